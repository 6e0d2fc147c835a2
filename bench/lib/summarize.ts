// Prints the Markdown tables of BENCHMARKS.md from bench/results/*.json, so that the document
// quotes exactly what the committed results say:  node --import tsx bench/lib/summarize.ts
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR } from './results.ts';
import { fmt, mdTable, type Spread } from './stats.ts';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function load(name: string): J | undefined {
  const f = path.join(BENCH_DIR, 'results', `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as J) : undefined;
}
const sp = (s: Spread, d = 1) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
const mach = (j: J) =>
  `_${j.machine.cpuModel}, ${j.machine.cores} cores, ${j.machine.memGiB} GiB, Node ${j.machine.node}; ${j.machine.date.slice(0, 16).replace('T', ' ')} UTC, commit ${j.machine.commit}; load average ${j.machine.loadAvgAtStart[0]} at start, ${j.loadAvgAtEnd?.[0] ?? '?'} at end; CPU pressure (PSI some avg60) ${j.machine.cpuPressureAtStart ?? '?'}% at start, ${j.cpuPressureAtEnd ?? '?'}% at end (shared machine)._`;

const out: string[] = [];
for (const [name, title] of [
  ['release-throughput', 'Throughput (release-throughput)'],
  ['release-throughput-logs-info', 'Throughput with request logs on (release-throughput --log-level info)'],
] as const) {
  const t = load(name);
  if (!t) continue;
  out.push(`### ${title}`, '', mach(t), '');
  const rows = [['contender', 'req/s, median (min–max)', 'spread', 'p99 ms', 'errors', 'req/s vs plain', 'CPU µs/request', 'CPU vs plain']];
  for (const [k, v] of Object.entries(t.summary as Record<string, J>)) rows.push([k, sp(v.rps, 0), `${fmt(v.rps.spreadPct)}%`, fmt(v.latencyP99Median, 0), String(v.errors), `${fmt(v.ratioOfMediansVsPlain * 100)}%`, sp(v.cpuUsPerRequest, 0), `${fmt(v.cpuRatioVsPlain * 100)}%`]);
  out.push(mdTable(rows), '');
  const pr = t.pairedRatioReleaseVsPlain as Spread;
  out.push(`Paired per-round ratio release/plain: median **${fmt(pr.median * 100)}%** (min ${fmt(pr.min * 100)}%, max ${fmt(pr.max * 100)}%), ${pr.n} rounds of ${t.settings.duration} s, ${t.settings.connections} connections, LOG_LEVEL=${t.settings['log-level']}. Target ≥ 95%: **${t.target.met ? 'met' : 'missed'}**.`, '');
  out.push(`Supervisor VmRSS in this run: ${fmt(t.rssBytes.afterBoot.supervisor / 2 ** 20)} MB after boot, ${fmt(t.rssBytes.afterRun.supervisor / 2 ** 20)} MB after all rounds.`, '');
}
const b = load('release-boot');
if (b) {
  out.push('### Boot to first 200 on /ready (release-boot)', '', mach(b), '');
  const rows = [['contender', 'ms, median (min–max)', 'spread', 'vs plain node']];
  const plain = (b.readyMs['plain node'] as Spread).median;
  for (const [k, v] of Object.entries(b.readyMs as Record<string, Spread>)) rows.push([k, sp(v, 0), `${fmt(v.spreadPct)}%`, `${fmt(v.median / plain, 2)}×`]);
  out.push(mdTable(rows), '');
  const pr = b.pairedRatioStartVsPlain as Spread;
  out.push(`Paired per-round ratio start/plain: median **${fmt(pr.median, 2)}×** (min ${fmt(pr.min, 2)}×, max ${fmt(pr.max, 2)}×), ${pr.n} rounds. Target ≤ 1.5×: **${b.target.met ? 'met' : 'missed'}**.${b.daemonCommandMs ? ` \`bin/orders daemon\` returned after ${fmt(b.daemonCommandMs.median, 0)} ms (median).` : ''}`, '');
}
const m = load('release-memory');
if (m) {
  out.push('### Memory (release-memory)', '', mach(m), '');
  const rows = [['process', 'VmRSS after boot', 'VmRSS after load', 'PSS after load', 'private after load']];
  for (const [k, v] of Object.entries(m.summary as Record<string, J>)) rows.push([k, sp(v.rssAfterBootMB), sp(v.rssAfterLoadMB), sp(v.pssAfterLoadMB), sp(v.privateAfterLoadMB)]);
  rows.push(['bare `node -e "setInterval(…)"` (floor)', sp(m.bareNodeMB.rss), '-', sp(m.bareNodeMB.pss), sp(m.bareNodeMB.private)]);
  out.push(mdTable(rows), '', `MB, median (min–max) over ${m.settings.rounds} fresh boots each; load: ${m.settings.duration} s of autocannon GET /hello. Target supervisor VmRSS ≤ 45 MB: **${m.target.met ? 'met' : 'missed'}**.`, '');
}
const u = load('upgrade-under-load');
if (u) {
  out.push('### Release switch under load (upgrade-under-load)', '', mach(u), '');
  const rows = [['contender', 'failed: total (refused/reset/other) [per round]', 'steady p99 ms', 'switch p99 ms', 'p99 ratio, median (max)', 'longest gap ms, median (max)', 'switch ms', 'old-release answers after switch', 'steady req/s']];
  for (const [k, v] of Object.entries(u.summary as Record<string, J>)) {
    const f = v.failed;
    rows.push([k, `${f.total} (${f.refused}/${f.reset}/${f.timeout + f.http5xx + f.other}) [${v.failedPerRound.join(', ')}]`, fmt(v.steadyP99Median), fmt(v.switchP99Median), `${fmt(v.p99RatioMedian, 2)}× (${fmt(v.p99RatioMax, 2)}×)`, `${fmt(v.longestGapMedian, 0)} (${fmt(v.longestGapMax, 0)})`, fmt(v.switchMsMedian, 0), String(v.oldReleaseAfterSwitchTotal), fmt(v.steadyRpsMedian, 0)]);
  }
  out.push(mdTable(rows), '');
  const gapRows = [['contender', 'whole run: longest gap ms @ ms from switch start (ms of it the load generator was stalled)', 'whole run, net of load-generator stalls', 'switch window +1 s: raw', 'switch window +1 s: net']];
  for (const [k, v] of Object.entries(u.summary as Record<string, J>)) {
    const g = v.gaps as J[];
    gapRows.push([k, g.map((x) => `${x.ms} @ ${x.atMsFromSwitchStart >= 0 ? '+' : ''}${x.atMsFromSwitchStart} (${x.clientStalledMs})`).join('; '), g.map((x) => String(x.netMs ?? '?')).join('; '), g.map((x) => String(x.switchMs ?? '?')).join('; '), g.map((x) => String(x.switchNetMs ?? '?')).join('; ')]);
  }
  out.push(mdTable(gapRows), '');
  if (u.target) out.push(`Slipway targets: zero failed **${u.target.zeroFailed ? 'met' : 'missed'}**; switch p99 ≤ 2× steady p99 (median over rounds) **${u.target.p99RatioAtMost2 ? 'met' : 'missed'}**; no gap > 100 ms in any round: over the whole run **${u.target.gapAtMost100ms ? 'met' : 'missed'}** as measured, **${u.target.netGapAtMost100ms ? 'met' : 'missed'}** net of the load generator's own stalls; within the switch window and the second after it **${u.target.switchGapAtMost100ms ? 'met' : 'missed'}** as measured, **${u.target.switchNetGapAtMost100ms ? 'met' : 'missed'}** net.`, '');
}
process.stdout.write(out.join('\n') + '\n');
