// Cost of the production hooks (request log line + metrics + per-request context) on the orders
// example's GET /hello, side by side with them off: the same release, 1 worker per mode. With
// `--modes on,glue`, the alternative in the same run: plain Fastify with its own request logging
// and fastify-metrics (bench/apps/fastify-glue.ts) against the same app without them.
//
// The server must be the bottleneck, not the load generator: on a 2-core machine the daemons
// (supervisor and worker) are pinned to CPU 0 and the load generators to CPU 1 (taskset). wrk is
// the load generator when installed (a C client that needs a fraction of the server's CPU per
// request); otherwise autocannon, in this process.
//
// How the modes are compared (--method): this machine is shared, and its speed moves by tens of
// percent within seconds, so modes loaded one after the other (`sequential`) differ by as much as
// what we measure. `interleaved` (default) loads every mode for the whole run but lets only one
// mode's daemons run at a time: the others are stopped (SIGSTOP) and the turn passes every
// --slice-ms. Each mode has the core to itself in its turns (no cache sharing with the other
// server), and whatever else the machine does hits all modes alike. The headline is requests per
// CPU-second of each mode's daemons (worker + supervisor, all threads, from /proc) relative to off
// in the same round. `shared` loads all modes at once on CPU 0 sharing it.
// Traffic only to 127.0.0.1; every run bounded in time. Writes bench/hooks-results.md.
//   node --import tsx bench/hooks.ts [--rounds 10] [--seconds 4] [--connections 16] [--method interleaved]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { buildRelease } from '../src/build/index.ts';
import { WORKER_NODE_FLAGS } from '../src/supervisor/worker.ts';
import { flags } from './lib/args.ts';
import { runCleanups, tempDir } from './lib/cleanup.ts';
import { machine, machineLine } from './lib/machine.ts';
import { median, medianInterval } from './lib/stats.ts';
import { hasCommand, loadAll, pinned, startDaemons, startPlain, takeTurns, wrkCount, type Daemon, type Load, type Measured } from './lib/turns.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const opt = flags('node --import tsx bench/hooks.ts — cost of request logs + metrics + context on GET /hello', {
  rounds: { default: 20, help: 'rounds (each measures every mode once; the first comes after the warm-up)' },
  seconds: { default: 4, help: 'measured seconds per round' },
  'warm-up': { default: 3, help: 'seconds of load before the first round (before every round with --fresh), not measured' },
  connections: { default: 16, help: 'keep-alive connections' },
  modes: { default: 'off,on', help: 'modes to compare (off is always measured; the default is the 10 % budget\'s measurement: every other process in the turns reads the costs a little higher): off, on, all, on-async-hooks, errors, glue (the alternative: plain Fastify with its own request logging and fastify-metrics, against glue-off), glue-log, glue-metrics, and any that BENCH_HOOKS_MODES adds' },
  method: { default: 'interleaved', help: 'interleaved: all modes loaded at once, their daemons taking turns on CPU 0 (the others stopped); shared: all modes at once on CPU 0, sharing it; sequential: one mode at a time (plain throughput, very noisy on a shared machine)' },
  'slice-ms': { default: 40, help: 'interleaved: how long each turn lasts' },
  instances: { default: 1, help: "daemons per mode (where a process's code and heap land moves it by ±2 % here); a mode's figures are its daemons' together" },
  fresh: { default: false, help: 'new daemons every round (stopped, a new copy of the release started and warmed up for --warm-up seconds): each round measures a new placement of every mode\'s code and heap, so a run averages as many placements as it has rounds while only one daemon a mode takes turns. It measures young workers: with an 8 s warm-up it read about 12 % where long-lived daemons read 7.6 to 10.5 % (bench/hooks-results.md)' },
  'no-pin': { default: false, help: 'do not pin the daemons to CPU 0 and the load generator to CPU 1 (pinning needs taskset and 2+ CPUs)' },
});

const MODES = {
  off: { env: { SLIPWAY_REQUEST_LOG: 'off', SLIPWAY_METRICS: 'off' }, what: 'no request log, no metrics (and so no per-request context)' },
  on: { env: {}, what: 'defaults: JSON request lines (req_id, trace_id, span_id, method, url, route, status, ms, release) appended by the worker to log/orders.log (under `daemon`), one for every error, aborted or slow request and for up to 1000 others a second per worker, the rest counted in the next line\'s "unlogged" (`SLIPWAY_REQUEST_LOG_RATE`; GET /hello here runs far above it), the request-duration histogram and in-flight gauge (every request), Node default metrics (prom-client\'s, without the GC histogram), per-request context following promises, x-request-id' },
  all: { env: { SLIPWAY_REQUEST_LOG: 'all' }, what: 'defaults, with a request line for every request, no cap (`SLIPWAY_REQUEST_LOG=all`)' },
  'on-async-hooks': { env: { SLIPWAY_REQUEST_CONTEXT: 'async-hooks' }, what: 'defaults, with the context carried by AsyncLocalStorage (async_hooks) instead' },
  errors: { env: { SLIPWAY_REQUEST_LOG: 'errors' }, what: 'defaults, with request lines only for errors (status 400 and up), aborted and slow requests (`SLIPWAY_REQUEST_LOG=errors`): none for GET /hello' },
  // The alternative, as Node teams glue it today (bench/apps/fastify-glue.ts): plain node, no supervisor.
  'glue-off': { env: { GLUE: 'off' }, plain: true, what: 'the alternative\'s baseline: the same GET /hello (and x-release header) on plain Fastify in a plain node process (with the node flags a Slipway worker gets: `--no-memory-reducer`), no logging, no metrics' },
  glue: { env: { GLUE: 'on' }, plain: true, baseline: 'glue-off', what: 'the alternative: plain Fastify in a plain node process with its own request logging at info (pino; two lines per request, written with `pino.destination({ sync: false })` to a file) and fastify-metrics 12 with its defaults (route histogram and summary, prom-client\'s default metrics); compared with glue-off. It writes a line for every request, as `all` does, and carries less: no trace ids, no context through awaits, no release in the lines, no redaction' },
  'glue-log': { env: { GLUE: 'log' }, plain: true, baseline: 'glue-off', what: 'the alternative with its request logging only (no fastify-metrics); compared with glue-off' },
  'glue-metrics': { env: { GLUE: 'metrics' }, plain: true, baseline: 'glue-off', what: 'the alternative with fastify-metrics only (no request logging); compared with glue-off' },
} as Record<string, { env: Record<string, string>; what: string; plain?: boolean; baseline?: string }>;
// Other modes for exploring (not in the report's text): BENCH_HOOKS_MODES='{"name":{"ENV":"value"}}' adds them.
for (const [name, env] of Object.entries(JSON.parse(process.env.BENCH_HOOKS_MODES ?? '{}') as Record<string, Record<string, string>>)) MODES[name] = { env, what: `defaults + ${JSON.stringify(env)}` };
type Mode = string;
const method = opt.method;
if (opt['slice-ms'] < 5) {
  process.stderr.write('hooks.ts: --slice-ms: at least 5\n');
  process.exit(2);
}
if (!Number.isInteger(opt.instances) || opt.instances < 1) {
  process.stderr.write(`hooks.ts: --instances: expected a whole number from 1, got ${opt.instances}\n`);
  process.exit(2);
}
if (!['interleaved', 'shared', 'sequential'].includes(method)) {
  process.stderr.write(`hooks.ts: --method: expected interleaved, shared or sequential, got "${method}"\n`);
  process.exit(2);
}
for (const name of opt.modes.split(',')) if (!MODES[name]) {
  process.stderr.write(`hooks.ts: --modes: unknown mode "${name}" (known: ${Object.keys(MODES).join(', ')})\n`);
  process.exit(2);
}
// off, and the baseline of every mode asked for, are always measured.
const asked = new Set(['off', ...opt.modes.split(',')]);
for (const name of [...asked]) if (MODES[name]?.baseline) asked.add(MODES[name].baseline!);
for (const name of Object.keys(MODES)) if (!asked.has(name)) delete MODES[name];
/** What a mode is compared with: its baseline, or off. */
const baselineOf = (mode: Mode): Mode => MODES[mode]!.baseline ?? 'off';

const pin = !opt['no-pin'] && pinned;
const useWrk = hasCommand('wrk');
const acModule = 'autocannon';
type AcResult = { requests: { total: number } };
const autocannon = useWrk ? undefined : ((await import(acModule)) as { default: (o: Record<string, unknown>) => Promise<AcResult> }).default;
if (pin && !useWrk) {
  // autocannon runs in this process: keep it off the server's CPU.
  execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
}

/** Requests completed in `seconds` against url. */
const load: Load = async (url, seconds) => (useWrk ? wrkCount(url, seconds, opt.connections, pin) : (await autocannon!({ url, connections: opt.connections, duration: seconds })).requests.total);

try {
  const m = machine();
  const tmp = tempDir('slipway-bench-hooks-');
  process.stderr.write(`building the orders release…\n`);
  const build = await buildRelease({ dir: path.join(here, '..', 'examples', 'orders'), out: path.join(tmp, 'build') });
  const modes = Object.keys(MODES) as Mode[];
  const releaseModes = modes.filter((mode) => !MODES[mode]!.plain);
  const plainModes = modes.filter((mode) => MODES[mode]!.plain);
  // The alternative is bundled as a release bundles the app (esbuild, one ES module).
  const glueScript = path.join(tmp, 'fastify-glue.mjs');
  if (plainModes.length) {
    process.stderr.write('bundling the alternative (bench/apps/fastify-glue.ts)…\n');
    await esbuild.build({
      entryPoints: [path.join(here, 'apps', 'fastify-glue.ts')],
      outfile: glueScript,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'silent',
      banner: { js: "import { createRequire as __glueCreateRequire } from 'node:module';\nconst require = __glueCreateRequire(import.meta.url);" },
    });
  }
  const instances = opt.instances;
  const names = (mode: Mode) => Array.from({ length: instances }, (_, i) => (instances > 1 ? `${mode}-${i + 1}` : mode));
  const start = async (suffix = ''): Promise<Record<Mode, Daemon[]>> => {
    const daemons = await startDaemons(releaseModes.flatMap((mode) => names(mode).map((name) => ({ name: name + suffix, tarball: build.tarball, env: MODES[mode].env }))), tmp, pin);
    const byMode = Object.fromEntries(releaseModes.map((mode, i) => [mode, daemons.slice(i * instances, (i + 1) * instances)])) as Record<Mode, Daemon[]>;
    for (const mode of plainModes) {
      byMode[mode] = [];
      for (const name of names(mode)) {
        const env = { ...MODES[mode].env, GLUE_LOG_FILE: path.join(tmp, `${name}${suffix}.log.jsonl`), NODE_ENV: 'production' };
        // The node flags a Slipway worker gets, so that the two stacks differ only in what is measured.
        byMode[mode].push(await startPlain({ name: name + suffix, script: glueScript, env, nodeFlags: WORKER_NODE_FLAGS }, tmp, pin));
      }
    }
    return byMode;
  };
  let live = await start(opt.fresh ? '-round-1' : '');

  type Run = { rps: number; workerUs: number; workerMainUs: number; supUs: number };
  const runs = {} as Record<Mode, Run[]>;
  for (const mode of modes) runs[mode] = [];
  // The off run each mode's run is compared with (same round, same moment).
  const offFor = {} as Record<Mode, Run[]>;
  for (const mode of modes) offFor[mode] = [];
  // Daemon.pids: supervisor, worker (a plain process: only its own, counted as the worker), so the
  // worker is the last. A mode's daemons together: requests summed, CPU per request weighted by requests.
  const worker = (xs: number[]) => xs[xs.length - 1]!;
  const asRuns = (got: Measured[], seconds: number): Run[] => {
    const runs: Run[] = [];
    for (let i = 0; i < got.length; i += instances) {
      const mine = got.slice(i, i + instances);
      const n = mine.reduce((a, g) => a + g.n, 0);
      const per = (pick: (g: Measured) => number) => mine.reduce((a, g) => a + pick(g) * g.n, 0) / n;
      runs.push({ rps: n / seconds, workerUs: per((g) => worker(g.pidUs)), workerMainUs: per((g) => worker(g.mainUs)), supUs: per((g) => (g.pidUs.length > 1 ? g.pidUs[0]! : 0)) });
    }
    return runs;
  };
  /** Load the given modes at once for `seconds`; CPU of each mode's daemons over the same window. */
  const measure = async (group: Mode[], seconds: number): Promise<Run[]> => asRuns(await loadAll(group.flatMap((mode) => live[mode]), seconds, load), seconds);
  const SLICE_MS = opt['slice-ms'];
  const WARM_UP = opt['warm-up'];
  /** All loaded, only one mode's daemons running at a time (turns of SLICE_MS). */
  const interleaved = async (group: Mode[], seconds: number): Promise<Run[]> => asRuns(await takeTurns(group.flatMap((mode) => live[mode]), seconds, SLICE_MS, load), seconds);
  const record = (mode: Mode, r: Run, off: Run | undefined) => {
    runs[mode].push(r);
    if (off) offFor[mode].push(off);
    process.stderr.write(`round ${runs[mode].length} ${mode.padEnd(15)} ${Math.round(r.rps)} req/s, CPU per request: worker ${r.workerUs.toFixed(1)} µs (main thread ${r.workerMainUs.toFixed(1)}), supervisor ${r.supUs.toFixed(1)} µs\n`);
  };
  for (let round = 0; round < opt.rounds; round++) {
    const warm = (round === 0 || opt.fresh) && WARM_UP > 0;
    // A new placement: the previous round's daemons stopped first, so that no more of them run.
    if (opt.fresh && round > 0) {
      for (const d of Object.values(live).flat()) await d.stop();
      live = await start(`-round-${round + 1}`);
    }
    if (method === 'sequential') {
      if (warm) for (const mode of modes) await measure([mode], WARM_UP);
      const order = round % 2 ? [...modes].reverse() : modes;
      const got = {} as Record<Mode, Run>;
      for (const mode of order) got[mode] = (await measure([mode], opt.seconds))[0]!;
      for (const mode of modes) record(mode, got[mode]!, got[baselineOf(mode)]);
    } else if (method === 'shared') {
      if (warm) await measure(modes, WARM_UP);
      const got = await measure(modes, opt.seconds);
      modes.forEach((mode, i) => record(mode, got[i]!, got[modes.indexOf(baselineOf(mode))]));
    } else {
      if (warm) await interleaved(modes, WARM_UP);
      const got = await interleaved(modes, opt.seconds);
      modes.forEach((mode, i) => record(mode, got[i]!, got[modes.indexOf(baselineOf(mode))]));
    }
  }

  const med = (mode: Mode, k: keyof Run) => median(runs[mode].map((r) => r[k]));
  const cpuPerReq = (r: Run) => r.workerUs + r.supUs;
  // Requests per CPU-second of the mode's daemons relative to off, and plain throughput relative to off, same round.
  const perCpu = (mode: Mode) => runs[mode].map((r, i) => cpuPerReq(offFor[mode][i]!) / cpuPerReq(r));
  const perRps = (mode: Mode) => runs[mode].map((r, i) => r.rps / offFor[mode][i]!.rps);
  const costs = (mode: Mode) => (method === 'sequential' ? perRps(mode) : perCpu(mode)).map((x) => (1 - x) * 100);
  const headline = (mode: Mode) => median(costs(mode));
  /** The headline with its interval; for Slipway's own hooks (`budget`), what it says of the 10 % budget. */
  const verdict = (mode: Mode, budget = true): string => {
    const { low, high, level } = medianInterval(costs(mode));
    if (!Number.isFinite(low)) return `**${headline(mode).toFixed(1)} %** (too few rounds for an interval)`;
    const against = !budget ? '' : high <= 10 ? ': within the 10 % budget' : low > 10 ? ': over the 10 % budget' : ': the interval holds 10 %, so this run does not settle the budget';
    return `**${headline(mode).toFixed(1)} %** (${(level * 100).toFixed(0)} % interval of the median ${low.toFixed(1)} to ${high.toFixed(1)} %, rounds taken as independent${against})`;
  };
  const pcts = (xs: number[]) => xs.map((x) => (x * 100).toFixed(0) + '%').join(' / ');
  const isBaseline = (mode: Mode) => mode === 'off' || modes.some((m) => MODES[m]!.baseline === mode);
  const rows = modes.map((mode) => {
    const vs = (text: () => string) => (isBaseline(mode) ? '—' : text());
    return `| ${mode} | ${runs[mode].map((r) => Math.round(r.rps)).join(' / ')} | ${vs(() => pcts(perRps(mode)))} | ${vs(() => pcts(perCpu(mode)))} | ${vs(() => headline(mode).toFixed(1) + ' %')} | ${med(mode, 'workerUs').toFixed(1)} | ${med(mode, 'workerMainUs').toFixed(1)} | ${MODES[mode]!.plain ? '—' : med(mode, 'supUs').toFixed(1)} |`;
  });
  const others = modes.filter((x) => !isBaseline(x) && x !== 'on');
  const defaultModes = 'off,on';
  const md = [
    '# Production hooks: cost on GET /hello',
    '',
    machineLine(m),
    '',
    `Setup: the orders example release under \`bin/orders daemon\`, ${instances > 1 ? `${instances} daemons of 1 worker per mode (a mode's figures are its daemons' together: where a process's code and heap land moves one by ±2 %)` : '1 worker per mode'} (SQLite default, OTel export off: OTEL_TRACES_EXPORTER=none; trace ids are still made and logged), one ${useWrk ? 'wrk (1 thread)' : 'autocannon'} per daemon with ${opt.connections} keep-alive connections, ${opt.rounds} rounds of ${opt.seconds} s after a ${WARM_UP} s warm-up${opt.fresh ? ', each round with new daemons (stopped, a new copy of the release started and warmed up), so that the rounds measure as many placements of each mode\'s code and heap' : ''}. ` +
      (method === 'interleaved'
        ? `Method \`interleaved\`: all modes are loaded for the whole round but only one mode's daemons run at a time (the others SIGSTOPped), taking turns of ${SLICE_MS} ms, so each has the core to itself in its turns and the shared machine's swings hit all modes alike. Headline: requests per CPU-second of each mode's daemons (worker + supervisor, from /proc) relative to off in the same round.`
        : method === 'shared'
          ? 'Method `shared`: all modes loaded at once, sharing the core. Headline: requests per CPU-second of each mode\'s daemons (worker + supervisor, from /proc) relative to off in the same round.'
          : 'Method `sequential`: one mode at a time, order alternating. Headline: plain throughput relative to off in the same round (very noisy on this shared machine).'),
    pin ? `Daemons (supervisor and worker${plainModes.length ? ', and the plain node processes' : ''}) pinned to CPU 0, the load generators to CPU 1, so the servers are the bottleneck.` : 'Not pinned (no taskset or one CPU): the load generator competes with the servers.',
    '',
    ...modes.map((mode) => `- **${mode}**: ${MODES[mode].what}.`),
    '',
    `| mode | req/s per round | throughput vs ${plainModes.length ? 'its baseline (off; glue: glue-off)' : 'off'}, same round | req per CPU-second vs ${plainModes.length ? 'its baseline' : 'off'}, same round | cost (median of rounds) | worker CPU µs/req | of it, its main thread | supervisor CPU µs/req |`,
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    (`${MODES.on ? `Cost of logging + metrics + context with the defaults: ${verdict('on')}, of GET /hello ${method === 'sequential' ? 'throughput' : 'throughput per CPU-second'}.` : ''}${others.map((x) => (x === 'glue' ? ` The alternative (glue, against glue-off, same rounds): ${verdict('glue', false)}.` : ` ${x}: ${headline(x).toFixed(1)} %.`)).join('')} Load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}.`).trim(),
    `Reproduce: \`node --import tsx bench/hooks.ts --rounds ${opt.rounds} --seconds ${opt.seconds} --connections ${opt.connections}${opt.modes !== defaultModes ? ` --modes ${opt.modes}` : ''}${WARM_UP !== 3 ? ` --warm-up ${WARM_UP}` : ''} --method ${method}${method === 'interleaved' ? ` --slice-ms ${SLICE_MS}` : ''}${instances > 1 ? ` --instances ${instances}` : ''}${opt.fresh ? ' --fresh' : ''}\` (install wrk for the numbers above: \`apt-get install wrk\`).`,
    '',
  ].join('\n');
  const file = path.join(here, 'hooks-results.md');
  const MARK = '<!-- analysis (hand-written, kept by bench/hooks.ts) -->';
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  writeFileSync(file, md + (old.includes(MARK) ? '\n' + old.slice(old.indexOf(MARK)) : ''));
  process.stdout.write(md);
} finally {
  await runCleanups();
}
