// GET /hello after the worker has been idle: Slipway's default worker flags (--no-memory-reducer,
// src/supervisor/worker.ts WORKER_NODE_FLAGS) vs the same release with V8's memory reducer back on
// (nodeFlags: ["--memory-reducer"], which is what plain Node does).
//
// Both releases boot and sit idle for --idle seconds before their first request, as a worker does
// that is started (deploy, restart, scale-up) before traffic reaches it: V8's memory reducer runs
// its "Mark-Compact (reduce)" collections about 15 s after boot. Then both are loaded in rounds
// whose turns alternate on one core (the other contender SIGSTOPped, 40 ms turns), so the shared
// machine's swings hit both alike. Headline: requests per CPU-second of each contender's daemons
// (worker + supervisor, from /proc), paired per round. `--warm-up 3` serves 3 s before the idle
// period: measured here, the reducer then did not run within 60 s and both contenders were equal.
//
//   node --import tsx bench/idle.ts [--idle 25] [--warm-up 0] [--rounds 8] [--seconds 4] [--connections 16]
//
// Traffic only to 127.0.0.1; every load bounded in time; every process stopped and temp dir removed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildRelease } from '../src/build/index.ts';
import { flags } from './lib/args.ts';
import { main, sleep, tempDir } from './lib/cleanup.ts';
import { machine, machineLine } from './lib/machine.ts';
import { writeResults } from './lib/results.ts';
import { median } from './lib/stats.ts';
import { hasCommand, pinned, startDaemons, takeTurns } from './lib/turns.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const opt = flags('node --import tsx bench/idle.ts — GET /hello after an idle period: default worker flags vs V8 memory reducer on', {
  idle: { default: 25, help: 'seconds both releases sit idle after boot (and warm-up), before the measured rounds' },
  'warm-up': { default: 0, help: 'seconds of load before the idle period' },
  rounds: { default: 8, help: 'measured rounds' },
  seconds: { default: 4, help: 'seconds per round' },
  connections: { default: 16, help: 'keep-alive connections (wrk, 1 thread)' },
  'slice-ms': { default: 40, help: 'how long each contender runs before the other gets the core' },
  out: { default: '', help: 'results JSON (default bench/results/idle.json)' },
});

const CONTENDERS = [
  { name: 'slipway defaults', nodeFlags: [] as string[], what: 'the worker as Slipway starts it (--no-memory-reducer)' },
  { name: 'memory reducer on', nodeFlags: ['--memory-reducer'], what: 'the same release with nodeFlags ["--memory-reducer"] (plain Node\'s default)' },
];

if (!hasCommand('wrk')) {
  process.stderr.write('idle.ts: needs wrk (apt-get install wrk)\n');
  process.exit(2);
}

await main(async () => {
  const m = machine();
  const tmp = tempDir('slipway-bench-idle-');
  process.stderr.write('building the orders release…\n');
  const build = await buildRelease({ dir: path.join(here, '..', 'examples', 'orders'), out: path.join(tmp, 'build') });
  const live = await startDaemons(CONTENDERS.map((c) => ({ name: c.name, tarball: build.tarball, nodeFlags: c.nodeFlags })), tmp);
  /** Both loaded for `seconds`, taking turns on the core; CPU µs per request of each. */
  const round = (seconds: number) => takeTurns(live, seconds, opt['slice-ms'], opt.connections);

  if (opt['warm-up'] > 0) {
    process.stderr.write(`warm-up (${opt['warm-up']} s)…\n`);
    await round(opt['warm-up']);
  }
  process.stderr.write(`idle for ${opt.idle} s…\n`);
  await sleep(opt.idle * 1000);
  const rounds: Array<Array<{ n: number; us: number }>> = [];
  for (let r = 0; r < opt.rounds; r++) {
    const got = await round(opt.seconds);
    rounds.push(got);
    process.stderr.write(`round ${r + 1}: ${CONTENDERS.map((c, i) => `${c.name} ${got[i]!.us.toFixed(1)} µs/req`).join(', ')}\n`);
  }
  // Requests per CPU-second of "memory reducer on" relative to the defaults, paired per round.
  const ratios = rounds.map((g) => g[0]!.us / g[1]!.us);
  const cost = (1 - median(ratios)) * 100;
  const md = [
    '# GET /hello after an idle period: memory reducer off (Slipway default) vs on',
    '',
    machineLine(m),
    '',
    `Both releases: the orders example under \`bin/orders daemon\`, 1 worker, request log and metrics on (defaults). ${opt['warm-up'] > 0 ? `${opt['warm-up']} s warm-up, then ` : 'After boot, '}${opt.idle} s idle, then ${opt.rounds} rounds of ${opt.seconds} s, wrk (1 thread, ${opt.connections} keep-alive connections) per release; the two take turns on CPU 0 (${opt['slice-ms']} ms each, the other SIGSTOPped)${pinned ? ', wrk on CPU 1' : ''}.`,
    '',
    ...CONTENDERS.map((c) => `- **${c.name}**: ${c.what}.`),
    '',
    '| round | ' + CONTENDERS.map((c) => `${c.name} µs CPU/req`).join(' | ') + ' | memory reducer on: req per CPU-second vs defaults |',
    '|---|---|---|---|',
    ...rounds.map((g, r) => `| ${r + 1} | ${g[0]!.us.toFixed(1)} | ${g[1]!.us.toFixed(1)} | ${(ratios[r]! * 100).toFixed(0)}% |`),
    '',
    `With V8's memory reducer on, a worker idle for ${opt.idle} s${opt['warm-up'] > 0 ? ' after a warm-up' : ' after boot'} then serves **${cost.toFixed(1)} %** fewer requests per CPU-second (median of rounds).`,
    `Reproduce: \`node --import tsx bench/idle.ts --idle ${opt.idle} --warm-up ${opt['warm-up']} --rounds ${opt.rounds} --seconds ${opt.seconds}\`.`,
    '',
  ].join('\n');
  process.stdout.write(md);
  const file = writeResults('idle', { machine: m, options: opt, contenders: CONTENDERS, rounds, reducerOnVsDefaultsPerCpu: ratios, costPercent: cost, markdown: md }, opt.out || undefined);
  process.stderr.write(`results: ${path.relative(process.cwd(), file)}\n`);
});
