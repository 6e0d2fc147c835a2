// Two builds of the orders release (or one build with two settings) on GET /hello, side by side:
// both loaded for the whole round, their daemons taking turns on CPU 0 (the other SIGSTOPped,
// 40 ms turns) so the shared machine's swings hit both alike; wrk on CPU 1. Headline: requests per
// CPU-second of B relative to A (worker + supervisor CPU from /proc), median of paired rounds.
// This is how the per-change gains in bench/hooks-results.md were measured.
//
//   git stash; npx slipway release -C examples/orders --out /tmp/a; git stash pop
//   npx slipway release -C examples/orders --out /tmp/b
//   node --import tsx bench/builds-ab.ts --a /tmp/a/orders-1.0.0.tar.gz --b /tmp/b/orders-1.0.0.tar.gz
//   node --import tsx bench/builds-ab.ts --a T.tar.gz --b T.tar.gz --env-b '{"SLIPWAY_REQUEST_CONTEXT":"off"}'
//
// Traffic only to 127.0.0.1; every load bounded in time; every process stopped and temp dir removed.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { flags } from './lib/args.ts';
import { main, sleep, tempDir } from './lib/cleanup.ts';
import { machine, machineLine } from './lib/machine.ts';
import { writeResults } from './lib/results.ts';
import { median } from './lib/stats.ts';
import { hasCommand, startDaemons, takeTurns, type Side } from './lib/turns.ts';

const opt = flags('node --import tsx bench/builds-ab.ts — two release tarballs (or settings) on GET /hello, taking turns on one core', {
  a: { default: '', help: 'tarball A (the baseline)' },
  b: { default: '', help: 'tarball B (default: the same as A)' },
  'env-a': { default: '{}', help: 'JSON of extra environment for A' },
  'env-b': { default: '{}', help: 'JSON of extra environment for B' },
  'flags-a': { default: '', help: 'nodeFlags for A (space-separated), written into its release.json' },
  'flags-b': { default: '', help: 'nodeFlags for B' },
  idle: { default: 1, help: 'seconds both sit idle after boot before the first round' },
  rounds: { default: 14, help: 'measured rounds (after one unmeasured warm-up round)' },
  seconds: { default: 4, help: 'seconds per round' },
  connections: { default: 16, help: 'keep-alive connections (wrk, 1 thread)' },
  'slice-ms': { default: 40, help: 'how long each runs before the other gets the core' },
  out: { default: '', help: 'results JSON (default bench/results/builds-ab.json)' },
});

function usage(message: string): never {
  process.stderr.write(`builds-ab.ts: ${message} (--help lists the flags)\n`);
  process.exit(2);
}
function json(name: string, text: string): Record<string, string> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, string>;
  } catch (err) {
    return usage(`--${name}: expected a JSON object, got ${JSON.stringify(text)} (${(err as Error).message})`);
  }
}
if (!opt.a) usage('--a is required: a release tarball');
const sides: Array<Side & { tarball: string; env: Record<string, string>; nodeFlags: string[] }> = [
  { name: 'A', tarball: path.resolve(opt.a), env: json('env-a', opt['env-a']), nodeFlags: opt['flags-a'].split(' ').filter(Boolean) },
  { name: 'B', tarball: path.resolve(opt.b || opt.a), env: json('env-b', opt['env-b']), nodeFlags: opt['flags-b'].split(' ').filter(Boolean) },
];
for (const s of sides) if (!existsSync(s.tarball)) usage(`no such tarball: ${s.tarball}`);
if (!hasCommand('wrk')) usage('needs wrk (apt-get install wrk)');

await main(async () => {
  const m = machine();
  const tmp = tempDir('slipway-bench-ab-');
  const live = await startDaemons(sides, tmp);
  const round = (seconds: number) => takeTurns(live, seconds, opt['slice-ms'], opt.connections);

  await sleep(opt.idle * 1000);
  process.stderr.write('warm-up round…\n');
  await round(opt.seconds);
  const rounds: Array<Array<{ n: number; us: number }>> = [];
  for (let r = 0; r < opt.rounds; r++) {
    const got = await round(opt.seconds);
    rounds.push(got);
    process.stderr.write(`round ${r + 1}: A ${got[0]!.us.toFixed(1)} µs/req, B ${got[1]!.us.toFixed(1)} µs/req, B vs A ${((got[0]!.us / got[1]!.us - 1) * 100).toFixed(1)} %\n`);
  }
  const ratios = rounds.map((g) => g[0]!.us / g[1]!.us);
  const gain = (median(ratios) - 1) * 100;
  const describe = (s: (typeof sides)[number]) => `\`${path.basename(path.dirname(s.tarball))}/${path.basename(s.tarball)}\`${Object.keys(s.env).length ? ` with ${JSON.stringify(s.env)}` : ''}${s.nodeFlags.length ? `, nodeFlags ${JSON.stringify(s.nodeFlags)}` : ''}`;
  const md = [
    `${machineLine(m)}`,
    '',
    `A: ${describe(sides[0]!)}; B: ${describe(sides[1]!)}. 1 worker each under \`bin/NAME daemon\`, ${opt.rounds} rounds of ${opt.seconds} s after a warm-up round, wrk (1 thread, ${opt.connections} connections) per side, turns of ${opt['slice-ms']} ms on CPU 0.`,
    '',
    `B vs A, requests per CPU-second: **${gain >= 0 ? '+' : ''}${gain.toFixed(1)} %** (median of paired rounds; per round ${ratios.map((x) => ((x - 1) * 100).toFixed(1)).join(' / ')} %).`,
    '',
  ].join('\n');
  process.stdout.write(md);
  const file = writeResults('builds-ab', { machine: m, options: opt, sides, rounds, bVsAPerCpu: ratios, gainPercent: gain, markdown: md }, opt.out || undefined);
  process.stderr.write(`results: ${path.relative(process.cwd(), file)}\n`);
});
