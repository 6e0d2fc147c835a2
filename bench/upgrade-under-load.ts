// Issue 3, performance: a release switch under a closed-loop load (32 keep-alive connections,
// GET /hello, bounded in time and count). Three ways to replace 1.0.0 by 1.1.0, side by side,
// rounds alternating A/B/C (order rotated every round), each round on freshly started processes:
//
//   A  slipway   bin/orders upgrade 1.1.0, 2 workers (SLIPWAY_WORKERS=2), 1.1.0 installed first
//   B  pm2       pm2 reload, cluster mode, 2 instances of the same bundle run standalone; the
//                script path is a symlink swapped from releases/1.0.0/app to releases/1.1.0/app
//   C  naive     plain node (1 process): SIGTERM it, wait for its exit, start 1.1.0
//
// Measured per round: failed requests by kind (refused, reset, timeout, 5xx, other), p99 of the
// requests started during the switch window (command start → command end; for naive, SIGTERM →
// first 200 on /ready of the new process) vs p99 in steady state before it, the longest time
// with no successful response, and responses from the old release after the switch ended.
//
//   node --import tsx bench/upgrade-under-load.ts [--rounds 3] [--steady 4] [--after 3]
import { existsSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { flags } from './lib/args.ts';
import { main, sleep, tempDir } from './lib/cleanup.ts';
import { failuresByKind, longestGap, longestNetGap, stallOverlap, startLoad, windowStats, type Sample, type WindowStats } from './lib/load.ts';
import { machine, machineLine } from './lib/machine.ts';
import { Pm2 } from './lib/pm2.ts';
import { Deployed, PlainNode, buildOrders, freePort, setLogLevel, waitFor200 } from './lib/release.ts';
import { writeResults } from './lib/results.ts';
import { fmt, median, table } from './lib/stats.ts';

const opts = flags('Release switch under load: slipway upgrade vs pm2 reload vs naive stop+start.', {
  rounds: { default: 4, help: 'rounds per contender' },
  steady: { default: 5, help: 'seconds of load before the switch (the first 2 s are warm-up, not measured)' },
  after: { default: 3, help: 'seconds of load after the switch ended' },
  'log-level': { default: 'warn', help: 'LOG_LEVEL of every contender; info turns on one JSON log line per request' },
  connections: { default: 32, help: 'keep-alive connections (closed loop)' },
  'max-requests': { default: 3_000_000, help: 'hard cap on requests per round' },
  'retry-delay': { default: 5, help: 'ms a connection slot waits after a failed request before reconnecting' },
  only: { default: '', help: 'comma-separated subset: slipway,pm2,naive' },
  out: { default: '', help: 'results file (default bench/results/upgrade-under-load.json)' },
});

const WARM_MS = 2000;
setLogLevel(String(opts['log-level']));
if (opts.steady * 1000 <= WARM_MS) throw new Error('--steady must be more than 2 s (the warm-up)');
const SWITCH_CAP_MS = 120_000;

interface Contender {
  label: string;
  /** Start 1.0.0; resolves with the port when it is serving. */
  setup(): Promise<number>;
  /** Replace 1.0.0 by 1.1.0; resolves when the tool says the switch is done. */
  switch(): Promise<string>;
  teardown(): Promise<void>;
  /** Supervisor log lines with their wall-clock time (slipway only), to mark phases on the timeline. */
  events?(): Array<{ wall: number; msg: string }>;
}

function slipway(): Contender {
  let d: Deployed;
  return {
    label: 'slipway upgrade (2 workers)',
    async setup() {
      const [b1, b2] = await Promise.all([buildOrders('1.0.0'), buildOrders('1.1.0')]);
      d = await Deployed.deploy(b1, { SLIPWAY_WORKERS: '2' });
      const port = await freePort();
      await d.runOk(['install', b2.tarball]);
      await d.daemon({ PORT: String(port) });
      for (let i = 0; i < 200; i++) {
        const st = await d.status();
        if (st.workers.filter((w) => w.state === 'ready').length >= 2) break;
        await sleep(50);
      }
      await waitFor200(port, '/ready', performance.now());
      return port;
    },
    async switch() {
      const r = await d.runOk(['upgrade', '1.1.0', '--json']);
      return r.stdout.trim();
    },
    teardown: () => d.stop(),
    events() {
      const f = path.join(d.root, 'log', 'orders.log');
      if (!existsSync(f)) return [];
      const out: Array<{ wall: number; msg: string }> = [];
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        if (!line.includes('"component":"supervisor"')) continue;
        try {
          const j = JSON.parse(line) as { time: string; msg: string };
          out.push({ wall: Date.parse(j.time), msg: j.msg });
        } catch {
          // not JSON
        }
      }
      return out;
    },
  };
}

function pm2Reload(): Contender {
  let pm2: Pm2;
  let link: string;
  let d: Deployed;
  return {
    label: 'pm2 reload (cluster, 2 instances)',
    async setup() {
      const [b1, b2] = await Promise.all([buildOrders('1.0.0'), buildOrders('1.1.0')]);
      d = await Deployed.deploy(b1, {});
      await d.runOk(['install', b2.tarball]);
      const dir = tempDir('slipway-bench-pm2app-');
      link = path.join(dir, 'current');
      symlinkSync(path.join(d.root, 'releases', '1.0.0', 'app'), link);
      const port = await freePort();
      pm2 = new Pm2();
      await pm2.start({
        name: 'orders',
        script: path.join(link, 'app.mjs'),
        mode: 'cluster',
        instances: 2,
        env: { PORT: String(port), HOST: '127.0.0.1', SLIPWAY_MODE: 'standalone', RELEASE_VAR: path.join(dir, 'var'), LOG_LEVEL: 'warn' },
      });
      for (let i = 0; i < 200; i++) {
        if ((await pm2.list()).filter((p) => p.status === 'online').length >= 2) break;
        await sleep(50);
      }
      await waitFor200(port, '/ready', performance.now());
      await sleep(500);
      return port;
    },
    async switch() {
      // Atomic symlink swap (as a capistrano-style deploy does), then pm2 reload.
      const tmp = `${link}.new`;
      symlinkSync(path.join(d.root, 'releases', '1.1.0', 'app'), tmp);
      renameSync(tmp, link);
      const r = await pm2.runOk(['reload', 'orders']);
      return r.stdout.split('\n').filter((l) => l.includes('✓')).length + ' instance(s) reloaded';
    },
    teardown: () => pm2.kill(),
  };
}

function naive(): Contender {
  let d: Deployed;
  let port: number;
  let varDir: string;
  let current: PlainNode | undefined;
  return {
    label: 'naive stop+start (plain node, 1 process)',
    async setup() {
      const [b1, b2] = await Promise.all([buildOrders('1.0.0'), buildOrders('1.1.0')]);
      d = await Deployed.deploy(b1, {});
      await d.runOk(['install', b2.tarball]);
      port = await freePort();
      varDir = path.join(tempDir('slipway-bench-var-'), 'var');
      current = PlainNode.fromDeploy(d, '1.0.0', port, varDir);
      const t0 = performance.now();
      current.start();
      await waitFor200(port, '/ready', t0, 30_000, 5, () => current!.exited);
      return port;
    },
    async switch() {
      await current!.stop();
      current = PlainNode.fromDeploy(d, '1.1.0', port, varDir);
      const t0 = performance.now();
      current.start();
      const ms = await waitFor200(port, '/ready', t0, 30_000, 5, () => current!.exited);
      return `new process ready ${fmt(ms, 0)} ms after its spawn`;
    },
    teardown: async () => {
      await current?.stop();
    },
  };
}

interface RoundResult {
  contender: string;
  round: number;
  switchStartMs: number;
  switchEndMs: number;
  switchMs: number;
  switchOutput: string;
  requests: number;
  failed: ReturnType<typeof failuresByKind>;
  failedTotal: number;
  steady: WindowStats;
  during: WindowStats;
  after: WindowStats;
  p99Ratio: number;
  longestGapMs: number;
  longestGapAtMs: number;
  /** how much of the longest gap the load generator itself was stalled (its event loop late) */
  clientStallInGapMs: number;
  clientStallMaxMs: number;
  /** longest gap once the load generator's own stalls are taken out */
  longestNetGapMs: number;
  longestNetGapAtMs: number;
  /** the same two, only within the switch window and the second after it */
  switchGapMs: number;
  switchNetGapMs: number;
  /** supervisor events, ms from the switch start */
  phases?: Array<{ t: number; msg: string }>;
  oldReleaseAfterSwitch: number;
  newReleaseShareAfter: number;
  timeline: Array<{ t: number; ok: number; failed: number; maxMs: number }>;
}

function analyse(label: string, round: number, samples: Sample[], s0: number, s1: number, end: number, out: string, stalls: Array<{ at: number; ms: number }>): RoundResult {
  const steady = windowStats(samples, WARM_MS, s0);
  const during = windowStats(samples, s0, s1);
  const after = windowStats(samples, s1, end);
  const measured = samples.filter((s) => s.start >= WARM_MS);
  const failed = failuresByKind(measured);
  const gap = longestGap(samples, WARM_MS, end);
  const netGap = longestNetGap(samples, WARM_MS, end, stalls);
  const swEnd = Math.min(end, s1 + 1000);
  const swGap = longestGap(samples, s0, swEnd);
  const swNetGap = longestNetGap(samples, s0, swEnd, stalls);
  const afterSamples = samples.filter((s) => s.start >= s1 && s.ok);
  const oldAfter = afterSamples.filter((s) => s.release === '1.0.0').length;
  const timeline: RoundResult['timeline'] = [];
  for (let t = Math.floor((s0 - 1000) / 100) * 100; t < s1 + 1000; t += 100) {
    const b = samples.filter((s) => s.start >= t && s.start < t + 100);
    timeline.push({ t: Math.round(t - s0), ok: b.filter((s) => s.ok).length, failed: b.filter((s) => !s.ok).length, maxMs: Math.round(Math.max(0, ...b.filter((s) => s.ok).map((s) => s.end - s.start)) * 10) / 10 });
  }
  return {
    contender: label,
    round,
    switchStartMs: s0,
    switchEndMs: s1,
    switchMs: s1 - s0,
    switchOutput: out,
    requests: measured.length,
    failed,
    failedTotal: measured.filter((s) => !s.ok).length,
    steady,
    during,
    after,
    p99Ratio: during.p99 / steady.p99,
    longestGapMs: gap.ms,
    longestGapAtMs: gap.at - s0,
    clientStallInGapMs: stallOverlap(stalls, gap.at, gap.ms),
    longestNetGapMs: netGap.ms,
    longestNetGapAtMs: netGap.at - s0,
    switchGapMs: swGap.ms,
    switchNetGapMs: swNetGap.ms,
    clientStallMaxMs: Math.max(0, ...stalls.filter((x) => x.at >= WARM_MS && x.at <= end).map((x) => x.ms)),
    oldReleaseAfterSwitch: oldAfter,
    newReleaseShareAfter: afterSamples.length ? afterSamples.filter((s) => s.release === '1.1.0').length / afterSamples.length : NaN,
    timeline,
  };
}

await main(async () => {
  const m = machine();
  console.log(`machine: ${machineLine(m)}`);
  const all = { slipway, pm2: pm2Reload, naive };
  const chosen = String(opts.only || 'slipway,pm2,naive').split(',').map((s) => s.trim()) as Array<keyof typeof all>;
  for (const c of chosen) if (!all[c]) throw new Error(`--only: unknown contender "${c}" (slipway, pm2, naive)`);
  await Promise.all([buildOrders('1.0.0'), buildOrders('1.1.0')]);

  const results: RoundResult[] = [];
  const order: string[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const seq = chosen.map((_, i) => chosen[(i + r) % chosen.length]!);
    for (const key of seq) {
      const c = all[key]();
      try {
        const port = await c.setup();
        const load = startLoad({ port, connections: opts.connections, durationMs: opts.steady * 1000 + SWITCH_CAP_MS + opts.after * 1000, maxRequests: opts['max-requests'], retryDelayMs: opts['retry-delay'] });
        await sleep(opts.steady * 1000);
        const s0 = load.now();
        let out: string;
        try {
          out = await c.switch();
        } catch (err) {
          load.stop();
          await load.done;
          throw err;
        }
        const s1 = load.now();
        await sleep(opts.after * 1000);
        load.stop();
        const samples = await load.done;
        const end = Math.min(load.now(), s1 + opts.after * 1000);
        const res = analyse(c.label, r + 1, samples, s0, s1, end, out, load.stalls);
        if (c.events) res.phases = c.events().map((e) => ({ t: Math.round(e.wall - load.wall0 - s0), msg: e.msg })).filter((e) => e.t >= -1000 && e.t <= res.switchMs + 1000);
        results.push(res);
        order.push(c.label);
        if (res.phases?.length) console.log(`    phases (ms from switch start): ${res.phases.map((e) => `+${e.t} ${e.msg.replace(/\s*\(.*$/, '').slice(0, 60)}`).join(' | ')}`);
        const f = res.failed;
        console.log(
          `round ${r + 1} ${c.label.padEnd(40)} switch ${fmt(res.switchMs, 0).padStart(6)} ms  failed ${res.failedTotal} (refused ${f.refused}, reset ${f.reset}, timeout ${f.timeout}, 5xx ${f.http5xx}, other ${f.other})  p99 steady ${fmt(res.steady.p99)} / switch ${fmt(res.during.p99)} ms (${fmt(res.p99Ratio, 2)}×)  gap ${fmt(res.longestGapMs, 0)} ms (client stalled ${fmt(res.clientStallInGapMs, 0)} ms of it) at +${fmt(res.longestGapAtMs, 0)} ms; net of client stalls ${fmt(res.longestNetGapMs, 0)} ms; in the switch window (+1 s) ${fmt(res.switchGapMs, 0)} ms, net ${fmt(res.switchNetGapMs, 0)} ms  old-after ${res.oldReleaseAfterSwitch}`,
        );
      } finally {
        await c.teardown();
      }
    }
  }

  const labels = [...new Set(results.map((r) => r.contender))];
  const rows = [['contender', 'failed (refused/reset/other)', 'steady p99 ms', 'switch p99 ms', 'p99 ratio', 'longest gap ms', 'switch ms', 'old rel. after', 'req/s steady']];
  const summary: Record<string, unknown> = {};
  for (const l of labels) {
    const rs = results.filter((r) => r.contender === l);
    const sum = (f: (r: RoundResult) => number) => rs.reduce((n, r) => n + f(r), 0);
    const failed = { total: sum((r) => r.failedTotal), refused: sum((r) => r.failed.refused), reset: sum((r) => r.failed.reset), timeout: sum((r) => r.failed.timeout), http5xx: sum((r) => r.failed.http5xx), other: sum((r) => r.failed.other) };
    const s = {
      rounds: rs.length,
      failed,
      failedPerRound: rs.map((r) => r.failedTotal),
      steadyP99Median: median(rs.map((r) => r.steady.p99)),
      switchP99Median: median(rs.map((r) => r.during.p99)),
      p99RatioMedian: median(rs.map((r) => r.p99Ratio)),
      p99RatioMax: Math.max(...rs.map((r) => r.p99Ratio)),
      longestGapMedian: median(rs.map((r) => r.longestGapMs)),
      longestGapMax: Math.max(...rs.map((r) => r.longestGapMs)),
      gaps: rs.map((r) => ({ ms: Math.round(r.longestGapMs), atMsFromSwitchStart: Math.round(r.longestGapAtMs), clientStalledMs: Math.round(r.clientStallInGapMs), netMs: Math.round(r.longestNetGapMs), switchMs: Math.round(r.switchGapMs), switchNetMs: Math.round(r.switchNetGapMs) })),
      switchGapMax: Math.max(...rs.map((r) => r.switchGapMs)),
      switchNetGapMax: Math.max(...rs.map((r) => r.switchNetGapMs)),
      longestNetGapMax: Math.max(...rs.map((r) => r.longestNetGapMs)),
      clientStallMaxMs: Math.max(...rs.map((r) => r.clientStallMaxMs)),
      switchMsMedian: median(rs.map((r) => r.switchMs)),
      oldReleaseAfterSwitchTotal: sum((r) => r.oldReleaseAfterSwitch),
      steadyRpsMedian: median(rs.map((r) => r.steady.rps)),
    };
    summary[l] = s;
    rows.push([
      l,
      `${failed.total} (${failed.refused}/${failed.reset}/${failed.timeout + failed.http5xx + failed.other}) [${s.failedPerRound.join(',')}]`,
      fmt(s.steadyP99Median),
      fmt(s.switchP99Median),
      `${fmt(s.p99RatioMedian, 2)}× (max ${fmt(s.p99RatioMax, 2)}×)`,
      `${fmt(s.longestGapMedian, 0)} (max ${fmt(s.longestGapMax, 0)})`,
      fmt(s.switchMsMedian, 0),
      String(s.oldReleaseAfterSwitchTotal),
      fmt(s.steadyRpsMedian, 0),
    ]);
  }
  console.log(`\n${table(rows)}\n(medians over rounds; failures summed over rounds, [per round])`);
  const sw = summary['slipway upgrade (2 workers)'] as { failed: { total: number }; p99RatioMedian: number; longestGapMax: number; longestNetGapMax: number; switchGapMax: number; switchNetGapMax: number } | undefined;
  let target: Record<string, boolean> | undefined;
  if (sw) {
    target = { zeroFailed: sw.failed.total === 0, p99RatioAtMost2: sw.p99RatioMedian <= 2, gapAtMost100ms: sw.longestGapMax <= 100, netGapAtMost100ms: sw.longestNetGapMax <= 100, switchGapAtMost100ms: sw.switchGapMax <= 100, switchNetGapAtMost100ms: sw.switchNetGapMax <= 100 };
    console.log(
      `slipway targets: zero failed ${target.zeroFailed ? 'MET' : 'MISSED'}; switch p99 ≤ 2× steady (median) ${target.p99RatioAtMost2 ? 'MET' : 'MISSED'}; no gap > 100 ms (every round, whole run) ${target.gapAtMost100ms ? 'MET' : 'MISSED'} raw, ${target.netGapAtMost100ms ? 'MET' : 'MISSED'} net of load-generator stalls; in the switch window (+1 s) ${target.switchGapAtMost100ms ? 'MET' : 'MISSED'} raw, ${target.switchNetGapAtMost100ms ? 'MET' : 'MISSED'} net`,
    );
  }
  const file = writeResults(
    'upgrade-under-load',
    {
      benchmark: 'upgrade-under-load',
      machine: m,
      settings: { ...opts, warmupMs: WARM_MS, path: 'GET /hello', client: 'undici Client per connection, keep-alive, no pipelining, 127.0.0.1', latency: 'exact percentiles of successful requests that started in the window' },
      order,
      summary,
      target,
      rounds: results,
    },
    opts.out || undefined,
  );
  console.log(`results: ${file}`);
});
