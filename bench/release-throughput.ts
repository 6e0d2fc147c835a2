// Issue 2, benchmark 1 (+ supervisor memory): GET /hello throughput through the release
// (bin/orders daemon, 1 worker: the worker accepts on the supervisor's socket, no proxy) vs the same
// bundle run as plain node (it binds PORT itself). PM2 cluster mode (1 instance, the same bundle)
// is measured too, as a reference. Rounds alternate A/B (order flipped every round: AB BA AB …).
//
//   node --import tsx bench/release-throughput.ts [--rounds 5] [--duration 10] [--connections 50]
import { flags } from './lib/args.ts';
import { cannon, type AutocannonResult } from './lib/autocannon.ts';
import { main, sleep } from './lib/cleanup.ts';
import { bootPlain, bootPm2, bootRelease, type Running } from './lib/contenders.ts';
import { setLogLevel } from './lib/release.ts';
import { MB, cpuMs, machine, machineLine, rssBytes } from './lib/machine.ts';
import { writeResults } from './lib/results.ts';
import { fmt, median, spread, table } from './lib/stats.ts';

const opts = flags('Throughput of GET /hello: release vs plain node (vs PM2 cluster).', {
  rounds: { default: 5, help: 'measured rounds per contender' },
  duration: { default: 10, help: 'seconds per round' },
  connections: { default: 50, help: 'autocannon connections' },
  warmup: { default: 3, help: 'warm-up seconds per contender (not measured)' },
  'skip-pm2': { default: false, help: 'do not measure PM2 cluster mode (1 instance), the reference column' },
  'plain-flags': { default: '', help: 'node flags for the plain node run, e.g. --enable-source-maps (the release default)' },
  'log-level': { default: 'warn', help: 'LOG_LEVEL of every contender; info turns on one JSON log line per request' },
  out: { default: '', help: 'results file (default bench/results/release-throughput.json)' },
});
const withPm2 = !opts['skip-pm2'];
setLogLevel(String(opts['log-level']));
const plainFlags = String(opts['plain-flags']).split(/\s+/).filter(Boolean);

await main(async () => {
  const m = machine();
  console.log(`machine: ${machineLine(m)}`);
  const release = await bootRelease('1.0.0', 1);
  const plain = await bootPlain('1.0.0', plainFlags.length ? `plain node ${plainFlags.join(' ')}` : 'plain node', plainFlags);
  const pm2 = withPm2 ? await bootPm2('1.0.0', 1, 'PM2 cluster (1 instance)') : undefined;
  const contenders: Running[] = [release, plain, ...(pm2 ? [pm2] : [])];
  await sleep(1000);
  const rssBoot = { supervisor: rssBytes(release.managerPid!), pm2Daemon: pm2 ? rssBytes(pm2.managerPid!) : undefined };
  console.log(`supervisor RSS after boot: ${fmt(rssBoot.supervisor! / MB)} MB${pm2 ? `; PM2 daemon: ${fmt(rssBoot.pm2Daemon! / MB)} MB` : ''}`);

  // CPU time used by the contender's processes (manager + workers) during the round, per request:
  // far less sensitive than req/s to other tenants of a shared machine.
  const cpuPerReq: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.label, []]));
  const run = async (c: Running, seconds: number) => {
    const pids = c.pids();
    const before = pids.map(cpuMs);
    const res = await cannon({ url: `http://127.0.0.1:${c.port}/hello`, connections: opts.connections, duration: seconds, maxOverallRequests: 2_000_000, timeout: 10 });
    const used = pids.map(cpuMs).reduce((n, x, i) => n + x - before[i]!, 0);
    return Object.assign(res, { cpuUsPerReq: (used * 1000) / Math.max(1, res.requests.total) });
  };
  for (const c of contenders) await run(c, opts.warmup);

  const results: Record<string, Array<AutocannonResult & { cpuUsPerReq: number }>> = Object.fromEntries(contenders.map((c) => [c.label, []]));
  const order: string[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const seq = r % 2 === 0 ? contenders : [contenders[1]!, contenders[0]!, ...contenders.slice(2)];
    for (const c of seq) {
      const res = await run(c, opts.duration);
      results[c.label]!.push(res);
      cpuPerReq[c.label]!.push(res.cpuUsPerReq);
      order.push(c.label);
      console.log(`round ${r + 1} ${c.label.padEnd(28)} ${fmt(res.requests.average, 0).padStart(7)} req/s  p50 ${res.latency.p50} ms  p99 ${res.latency.p99} ms  errors ${res.errors} non2xx ${res.non2xx}  CPU ${fmt(res.cpuUsPerReq, 0)} µs/req`);
    }
  }
  const rssAfter = { supervisor: rssBytes(release.managerPid!), pm2Daemon: pm2 ? rssBytes(pm2.managerPid!) : undefined };

  const rps = (label: string) => results[label]!.map((x) => x.requests.average);
  const A = rps(release.label);
  const B = rps(plain.label);
  const pairRatios = A.map((a, i) => a / B[i]!);
  const rows = [['contender', 'req/s median (min–max)', 'spread', 'p50 ms', 'p99 ms', 'errors', 'vs plain node', 'CPU µs/req', 'CPU vs plain']];
  const summary: Record<string, unknown> = {};
  for (const c of contenders) {
    const xs = rps(c.label);
    const s = spread(xs);
    const p50 = median(results[c.label]!.map((x) => x.latency.p50));
    const p99 = median(results[c.label]!.map((x) => x.latency.p99));
    const errors = results[c.label]!.reduce((n, x) => n + x.errors + x.non2xx, 0);
    const ratio = s.median / median(B);
    const cpu = spread(cpuPerReq[c.label]!);
    const cpuRatio = cpu.median / median(cpuPerReq[plain.label]!);
    rows.push([c.label, `${fmt(s.median, 0)} (${fmt(s.min, 0)}–${fmt(s.max, 0)})`, `${fmt(s.spreadPct)}%`, fmt(p50, 0), fmt(p99, 0), String(errors), `${fmt(ratio * 100)}%`, `${fmt(cpu.median, 0)} (${fmt(cpu.min, 0)}–${fmt(cpu.max, 0)})`, `${fmt(cpuRatio * 100)}%`]);
    summary[c.label] = { rps: s, latencyP50Median: p50, latencyP99Median: p99, errors, ratioOfMediansVsPlain: ratio, cpuUsPerRequest: cpu, cpuRatioVsPlain: cpuRatio };
  }
  const pr = spread(pairRatios);
  console.log(`\n${table(rows)}`);
  console.log(`\nrelease/plain per round (paired): median ${fmt(pr.median * 100)}% (min ${fmt(pr.min * 100)}%, max ${fmt(pr.max * 100)}%) — target ≥ 95%: ${pr.median >= 0.95 ? 'MET' : 'MISSED'}`);
  console.log(`supervisor RSS: ${fmt(rssBoot.supervisor! / MB)} MB after boot, ${fmt(rssAfter.supervisor! / MB)} MB after the run${pm2 ? `; PM2 daemon: ${fmt(rssBoot.pm2Daemon! / MB)} → ${fmt(rssAfter.pm2Daemon! / MB)} MB` : ''}`);

  const file = writeResults(
    'release-throughput',
    {
      benchmark: 'release-throughput',
      machine: m,
      settings: { ...opts, pm2: withPm2, tool: 'autocannon 9.0.0 (programmatic), 127.0.0.1, GET /hello' },
      order,
      summary,
      pairedRatioReleaseVsPlain: pr,
      target: { ratio: 0.95, met: pr.median >= 0.95 },
      rssBytes: { afterBoot: rssBoot, afterRun: rssAfter },
      rounds: Object.fromEntries(
        Object.entries(results).map(([k, v]) => [k, v.map((x) => ({ cpuUsPerReq: x.cpuUsPerReq, rps: x.requests.average, p50: x.latency.p50, p99: x.latency.p99, max: x.latency.max, total: x.requests.total, errors: x.errors, non2xx: x.non2xx }))]),
      ),
    },
    opts.out || undefined,
  );
  console.log(`results: ${file}`);
});
