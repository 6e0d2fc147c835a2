// Issue 2, benchmark 2: time from spawn to the first 200 on /ready (polled every 5 ms on a fresh
// connection) for `bin/orders start` (sh script → supervisor → worker, 1 worker) vs the same bundle
// as plain node (`node releases/VSN/app/app.mjs`, binds PORT itself). Optionally `bin/orders daemon`
// too (first 200, and when the command returns). Rounds alternate A/B (order flipped each round).
//
//   node --import tsx bench/release-boot.ts [--rounds 10]
import path from 'node:path';
import { flags } from './lib/args.ts';
import { main, sleep, tempDir } from './lib/cleanup.ts';
import { machine, machineLine } from './lib/machine.ts';
import { Deployed, PlainNode, buildOrders, freePort, waitFor200 } from './lib/release.ts';
import { writeResults } from './lib/results.ts';
import { fmt, spread, table, type Spread } from './lib/stats.ts';

const opts = flags('Boot time to the first 200 on /ready: bin/orders start vs plain node.', {
  rounds: { default: 10, help: 'measured rounds per contender' },
  'skip-daemon': { default: false, help: 'do not measure `bin/orders daemon`' },
  out: { default: '', help: 'results file (default bench/results/release-boot.json)' },
});

await main(async () => {
  const m = machine();
  console.log(`machine: ${machineLine(m)}`);
  const build = await buildOrders('1.0.0');
  const d = await Deployed.deploy(build, { SLIPWAY_WORKERS: '1' });
  const portStart = await freePort();
  const portDaemon = await freePort();
  const plain = PlainNode.fromDeploy(d, '1.0.0', await freePort(), path.join(tempDir('slipway-bench-var-'), 'var'));

  type Label = 'bin/orders start' | 'plain node' | 'bin/orders daemon';
  const measure: Record<Label, () => Promise<{ ready: number; command?: number }>> = {
    'bin/orders start': async () => {
      const t0 = performance.now();
      const child = d.startForeground({ PORT: String(portStart) });
      let exited = false;
      child.once('exit', () => (exited = true));
      try {
        return { ready: await waitFor200(portStart, '/ready', t0, 30_000, 5, () => exited) };
      } finally {
        await d.stop();
      }
    },
    'plain node': async () => {
      const t0 = performance.now();
      plain.start();
      try {
        return { ready: await waitFor200(plain.port, '/ready', t0, 30_000, 5, () => plain.exited) };
      } finally {
        await plain.stop();
      }
    },
    'bin/orders daemon': async () => {
      const t0 = performance.now();
      let commandMs: number | undefined;
      const cmd = d.daemon({ PORT: String(portDaemon) }).then((r) => (commandMs = r.ms));
      try {
        const ready = await waitFor200(portDaemon, '/ready', t0, 30_000, 5);
        await cmd;
        return { ready, command: commandMs };
      } finally {
        await cmd.catch(() => undefined);
        await d.stop();
      }
    },
  };
  const labels: Label[] = ['bin/orders start', 'plain node', ...(opts['skip-daemon'] ? [] : (['bin/orders daemon'] as Label[]))];

  // Warm-up: the first boot creates the SQLite file and runs migrations; disk caches fill.
  for (const l of labels) await measure[l]();

  const ready: Record<string, number[]> = Object.fromEntries(labels.map((l) => [l, []]));
  const command: number[] = [];
  const order: string[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const seq = r % 2 === 0 ? labels : [labels[1]!, labels[0]!, ...labels.slice(2)];
    for (const l of seq) {
      const res = await measure[l]();
      ready[l]!.push(res.ready);
      if (res.command !== undefined) command.push(res.command);
      order.push(l);
      await sleep(200);
    }
    console.log(`round ${r + 1}: ${labels.map((l) => `${l} ${fmt(ready[l]![r]!, 0)} ms`).join(', ')}`);
  }
  const S: Record<string, Spread> = Object.fromEntries(labels.map((l) => [l, spread(ready[l]!)]));
  const pairs = ready['bin/orders start']!.map((a, i) => a / ready['plain node']![i]!);
  const pr = spread(pairs);
  const rows = [['contender', 'first 200 /ready, ms: median (min–max)', 'spread', 'vs plain node']];
  for (const l of labels) rows.push([l, `${fmt(S[l]!.median, 0)} (${fmt(S[l]!.min, 0)}–${fmt(S[l]!.max, 0)})`, `${fmt(S[l]!.spreadPct)}%`, `${fmt(S[l]!.median / S['plain node']!.median, 2)}×`]);
  console.log(`\n${table(rows)}`);
  if (command.length) console.log(`bin/orders daemon command returned after ${fmt(spread(command).median, 0)} ms (median; it polls status every 50 ms)`);
  console.log(`start/plain per round (paired): median ${fmt(pr.median, 2)}× (min ${fmt(pr.min, 2)}×, max ${fmt(pr.max, 2)}×) — target ≤ 1.5×: ${pr.median <= 1.5 ? 'MET' : 'MISSED'}`);
  const file = writeResults(
    'release-boot',
    {
      benchmark: 'release-boot',
      machine: m,
      settings: { ...opts, pollEveryMs: 5, probe: 'GET /ready on a fresh connection (agent: false), 127.0.0.1', workers: 1 },
      order,
      readyMs: S,
      daemonCommandMs: command.length ? spread(command) : undefined,
      pairedRatioStartVsPlain: pr,
      target: { ratio: 1.5, met: pr.median <= 1.5 },
    },
    opts.out || undefined,
  );
  console.log(`results: ${file}`);
});
