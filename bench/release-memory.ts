// Issue 2, benchmark 3: resident memory (VmRSS from /proc) of the supervisor, after boot and after
// a GET /hello load, vs the PM2 daemon (God) running the same bundle in cluster mode with 1
// instance (PM2's daemon then also owns the listening socket, as our supervisor does). An idle bare
// `node` process is measured as the floor. Rounds alternate A/B (order flipped each round); each
// round boots fresh processes. VmRSS counts the node binary's pages that every node process shares,
// so PSS and private (USS) bytes from /proc/PID/smaps_rollup are reported beside it.
//
//   node --import tsx bench/release-memory.ts [--rounds 3] [--duration 10]
import { spawn } from 'node:child_process';
import { flags } from './lib/args.ts';
import { cannon } from './lib/autocannon.ts';
import { main, onCleanup, sleep, trackPid, untrackPid, killAll } from './lib/cleanup.ts';
import { bootPm2, bootRelease, type Running } from './lib/contenders.ts';
import { MB, machine, machineLine, memDetail, rssBytes, type MemDetail } from './lib/machine.ts';
import { childPidsOf } from './lib/procs.ts';
import { writeResults } from './lib/results.ts';
import { fmt, spread, table, type Spread } from './lib/stats.ts';

const opts = flags('Supervisor RSS vs PM2 daemon RSS, after boot and after load.', {
  rounds: { default: 3, help: 'rounds per contender (fresh boot each)' },
  duration: { default: 10, help: 'seconds of GET /hello load (autocannon) between the two readings' },
  connections: { default: 50, help: 'autocannon connections' },
  out: { default: '', help: 'results file (default bench/results/release-memory.json)' },
});

async function bareNodeMem(): Promise<MemDetail> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const pid = child.pid!;
  trackPid(pid);
  const done = onCleanup(`kill bare node ${pid}`, () => {
    killAll([pid]);
    untrackPid(pid);
  });
  await sleep(1500);
  const mem = memDetail(pid)!;
  await done();
  return mem;
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
  const data: Record<string, { boot: MemDetail[]; after: MemDetail[]; appBoot: number[]; appAfter: number[] }> = Object.fromEntries(labels.map((l) => [l, { boot: [], after: [], appBoot: [], appAfter: [] }]));
  const bare: MemDetail[] = [];
  const order: string[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    bare.push(await bareNodeMem());
    const seq = r % 2 === 0 ? labels : [...labels].reverse();
    for (const l of seq) {
      const c = await boot[l]();
      try {
        await sleep(1000);
        const pid = c.managerPid!;
        const app = () => childPidsOf(pid).reduce((n, p) => n + (rssBytes(p) ?? 0), 0);
        data[l]!.boot.push(memDetail(pid)!);
        data[l]!.appBoot.push(app());
        await cannon({ url: `http://127.0.0.1:${c.port}/hello`, connections: opts.connections, duration: opts.duration, maxOverallRequests: 2_000_000 });
        await sleep(1000);
        data[l]!.after.push(memDetail(pid)!);
        data[l]!.appAfter.push(app());
        order.push(l);
        console.log(`round ${r + 1} ${l.padEnd(34)} RSS ${fmt(data[l]!.boot[r]!.rss / MB)} MB (private ${fmt(data[l]!.boot[r]!.private / MB)}) after boot, ${fmt(data[l]!.after[r]!.rss / MB)} MB (private ${fmt(data[l]!.after[r]!.private / MB)}) after ${opts.duration} s of load`);
      } finally {
        await c.stop();
      }
    }
  }
  const mb = (xs: number[]) => spread(xs.map((x) => x / MB));
  const f = (x: Spread) => `${fmt(x.median)} (${fmt(x.min)}–${fmt(x.max)})`;
  const rows = [['process', 'RSS after boot', 'RSS after load', 'PSS after load', 'private after load', 'app worker(s) RSS after load']];
  const summary: Record<string, Record<string, Spread>> = {};
  for (const l of labels) {
    const D = data[l]!;
    const s = {
      rssAfterBootMB: mb(D.boot.map((x) => x.rss)),
      rssAfterLoadMB: mb(D.after.map((x) => x.rss)),
      pssAfterBootMB: mb(D.boot.map((x) => x.pss)),
      pssAfterLoadMB: mb(D.after.map((x) => x.pss)),
      privateAfterBootMB: mb(D.boot.map((x) => x.private)),
      privateAfterLoadMB: mb(D.after.map((x) => x.private)),
      appRssAfterBootMB: mb(D.appBoot),
      appRssAfterLoadMB: mb(D.appAfter),
    };
    summary[l] = s;
    rows.push([l, f(s.rssAfterBootMB), f(s.rssAfterLoadMB), f(s.pssAfterLoadMB), f(s.privateAfterLoadMB), fmt(s.appRssAfterLoadMB.median)]);
  }
  const bn = { rss: mb(bare.map((x) => x.rss)), pss: mb(bare.map((x) => x.pss)), private: mb(bare.map((x) => x.private)) };
  rows.push(['bare node -e setInterval (floor)', f(bn.rss), '-', f(bn.pss), f(bn.private), '-']);
  console.log(`\n${table(rows)}\n(MB, median (min–max) over ${opts.rounds} rounds)`);
  const sup = summary['slipway supervisor']!;
  const pm = summary['PM2 daemon (cluster, 1 instance)']!;
  const worst = Math.max(sup.rssAfterBootMB.median, sup.rssAfterLoadMB.median);
  console.log(`supervisor/PM2 daemon RSS: ${fmt((sup.rssAfterBootMB.median / pm.rssAfterBootMB.median) * 100)}% after boot, ${fmt((sup.rssAfterLoadMB.median / pm.rssAfterLoadMB.median) * 100)}% after load; private: ${fmt((sup.privateAfterLoadMB.median / pm.privateAfterLoadMB.median) * 100)}% after load`);
  console.log(`target supervisor VmRSS ≤ 45 MB: ${worst <= 45 ? 'MET' : 'MISSED'} (${fmt(worst)} MB; a bare idle node process: ${fmt(bn.rss.median)} MB)`);
  const file = writeResults(
    'release-memory',
    { benchmark: 'release-memory', machine: m, settings: { ...opts, source: '/proc/PID/smaps_rollup (Rss, Pss, Private_*)', load: 'autocannon GET /hello' }, order, summary, bareNodeMB: bn, target: { rssMB: 45, met: worst <= 45 } },
    opts.out || undefined,
  );
  console.log(`results: ${file}`);
});
