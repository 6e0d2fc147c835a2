// Issue 2, benchmark 3: resident memory (VmRSS from /proc) of the supervisor, after boot and after
// a GET /hello load, vs the PM2 daemon (God) running the same bundle in cluster mode with 1
// instance (PM2's daemon then also owns the listening socket, as our supervisor does). An idle bare
// `node` process is measured as the floor. Rounds alternate A/B (order flipped each round); each
// round boots fresh processes.
//
//   node --import tsx bench/release-memory.ts [--rounds 3] [--duration 10]
import { spawn } from 'node:child_process';
import { flags } from './lib/args.ts';
import { cannon } from './lib/autocannon.ts';
import { main, onCleanup, sleep, trackPid, untrackPid, killAll } from './lib/cleanup.ts';
import { bootPm2, bootRelease, type Running } from './lib/contenders.ts';
import { MB, machine, machineLine, rssBytes } from './lib/machine.ts';
import { childPidsOf } from './lib/procs.ts';
import { writeResults } from './lib/results.ts';
import { fmt, spread, table } from './lib/stats.ts';

const opts = flags('Supervisor RSS vs PM2 daemon RSS, after boot and after load.', {
  rounds: { default: 3, help: 'rounds per contender (fresh boot each)' },
  duration: { default: 10, help: 'seconds of GET /hello load (autocannon) between the two readings' },
  connections: { default: 50, help: 'autocannon connections' },
  out: { default: '', help: 'results file (default bench/results/release-memory.json)' },
});

async function bareNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const pid = child.pid!;
  trackPid(pid);
  const done = onCleanup(`kill bare node ${pid}`, () => {
    killAll([pid]);
    untrackPid(pid);
  });
  await sleep(1500);
  const rss = rssBytes(pid)!;
  await done();
  return rss;
}

await main(async () => {
  const m = machine();
  console.log(`machine: ${machineLine(m)}`);
  type Label = 'slipway supervisor' | 'PM2 daemon (cluster, 1 instance)';
  const boot: Record<Label, () => Promise<Running>> = {
    'slipway supervisor': () => bootRelease('1.0.0', 1),
    'PM2 daemon (cluster, 1 instance)': () => bootPm2('1.0.0', 1),
  };
  const labels = Object.keys(boot) as Label[];
  const data: Record<string, { boot: number[]; after: number[]; appBoot: number[]; appAfter: number[] }> = Object.fromEntries(labels.map((l) => [l, { boot: [], after: [], appBoot: [], appAfter: [] }]));
  const bare: number[] = [];
  const order: string[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    bare.push(await bareNodeRss());
    const seq = r % 2 === 0 ? labels : [...labels].reverse();
    for (const l of seq) {
      const c = await boot[l]();
      try {
        await sleep(1000);
        const pid = c.managerPid!;
        const app = () => childPidsOf(pid).reduce((n, p) => n + (rssBytes(p) ?? 0), 0);
        data[l]!.boot.push(rssBytes(pid)!);
        data[l]!.appBoot.push(app());
        await cannon({ url: `http://127.0.0.1:${c.port}/hello`, connections: opts.connections, duration: opts.duration, maxOverallRequests: 2_000_000 });
        await sleep(1000);
        data[l]!.after.push(rssBytes(pid)!);
        data[l]!.appAfter.push(app());
        order.push(l);
        console.log(`round ${r + 1} ${l.padEnd(34)} RSS ${fmt(data[l]!.boot[r]! / MB)} MB after boot, ${fmt(data[l]!.after[r]! / MB)} MB after ${opts.duration} s of load`);
      } finally {
        await c.stop();
      }
    }
  }
  const mb = (xs: number[]) => spread(xs.map((x) => x / MB));
  const rows = [['process', 'RSS after boot, MB', 'RSS after load, MB', 'app worker(s) after load, MB']];
  const summary: Record<string, unknown> = {};
  for (const l of labels) {
    const b = mb(data[l]!.boot);
    const a = mb(data[l]!.after);
    const w = mb(data[l]!.appAfter);
    rows.push([l, `${fmt(b.median)} (${fmt(b.min)}–${fmt(b.max)})`, `${fmt(a.median)} (${fmt(a.min)}–${fmt(a.max)})`, fmt(w.median)]);
    summary[l] = { afterBootMB: b, afterLoadMB: a, appAfterLoadMB: w, appAfterBootMB: mb(data[l]!.appBoot) };
  }
  const bn = mb(bare);
  rows.push(['bare node -e setInterval (floor)', `${fmt(bn.median)} (${fmt(bn.min)}–${fmt(bn.max)})`, '-', '-']);
  console.log(`\n${table(rows)}`);
  const sup = summary['slipway supervisor'] as { afterBootMB: { median: number }; afterLoadMB: { median: number } };
  const pm = summary['PM2 daemon (cluster, 1 instance)'] as { afterBootMB: { median: number }; afterLoadMB: { median: number } };
  const worst = Math.max(sup.afterBootMB.median, sup.afterLoadMB.median);
  console.log(`supervisor/PM2 daemon: ${fmt((sup.afterBootMB.median / pm.afterBootMB.median) * 100)}% after boot, ${fmt((sup.afterLoadMB.median / pm.afterLoadMB.median) * 100)}% after load`);
  console.log(`target supervisor ≤ 45 MB: ${worst <= 45 ? 'MET' : 'MISSED'} (${fmt(worst)} MB, bare node floor ${fmt(bn.median)} MB)`);
  const file = writeResults(
    'release-memory',
    { benchmark: 'release-memory', machine: m, settings: { ...opts, source: 'VmRSS from /proc/PID/status', load: 'autocannon GET /hello' }, order, summary, bareNodeMB: bn, target: { mb: 45, met: worst <= 45 } },
    opts.out || undefined,
  );
  console.log(`results: ${file}`);
});
