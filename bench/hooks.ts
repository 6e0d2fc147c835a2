// Cost of the production hooks (request log line + metrics + per-request context) on the orders
// example's GET /hello, side by side with them off: the same release, 1 worker each, all modes
// running at once and measured one after the other, rounds alternating the order.
//
// The server must be the bottleneck, not the load generator: on a 2-core machine the daemons
// (supervisor, whose log capture is part of the cost, and worker) are pinned to CPU 0 and the load
// generator to CPU 1 (taskset). wrk is the load generator when installed (a C client that needs a
// fraction of the server's CPU per request); otherwise autocannon, in this process.
// Traffic only to 127.0.0.1; every run bounded in time. Writes bench/hooks-results.md.
//   node --import tsx bench/hooks.ts [--rounds 7] [--seconds 5] [--connections 16]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { buildRelease } from '../src/build/index.ts';
import { childPids, freePort } from '../src/release/process.ts';
import { ReleaseRoot } from '../src/release/layout.ts';
import { flags } from './lib/args.ts';
import { onCleanup, runCleanups, tempDir } from './lib/cleanup.ts';
import { cpuMs, machine, machineLine } from './lib/machine.ts';
import { median } from './lib/stats.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const opt = flags('node --import tsx bench/hooks.ts — cost of request logs + metrics + context on GET /hello', {
  rounds: { default: 7, help: 'rounds (each runs every mode once, order alternating)' },
  seconds: { default: 5, help: 'measured seconds per run (after a 1 s warm-up)' },
  connections: { default: 16, help: 'keep-alive connections' },
  'no-pin': { default: false, help: 'do not pin the daemons to CPU 0 and the load generator to CPU 1 (pinning needs taskset and 2+ CPUs)' },
});

const MODES = {
  off: { env: { SLIPWAY_REQUEST_LOG: 'off', SLIPWAY_METRICS: 'off' }, what: 'no request log, no metrics (and so no per-request context)' },
  on: { env: {}, what: 'defaults: one JSON request line per request (req_id, trace_id, span_id, method, url, route, status, ms, release) through the supervisor into log/orders.log, the request-duration histogram and in-flight gauge, Node default metrics, per-request context following promises, x-request-id' },
  'on-async-hooks': { env: { SLIPWAY_REQUEST_CONTEXT: 'async-hooks' }, what: 'defaults, with the context carried by AsyncLocalStorage (async_hooks) instead' },
} as Record<string, { env: Record<string, string>; what: string }>;
// Other modes for exploring (not in the report's text): BENCH_HOOKS_MODES='{"name":{"ENV":"value"}}' adds them.
for (const [name, env] of Object.entries(JSON.parse(process.env.BENCH_HOOKS_MODES ?? '{}') as Record<string, Record<string, string>>)) MODES[name] = { env, what: `defaults + ${JSON.stringify(env)}` };
type Mode = string;

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const pin = !opt['no-pin'] && os.cpus().length >= 2 && has('taskset');
const useWrk = has('wrk');
const acModule = 'autocannon';
type AcResult = { requests: { total: number } };
const autocannon = useWrk ? undefined : ((await import(acModule)) as { default: (o: Record<string, unknown>) => Promise<AcResult> }).default;
if (pin && !useWrk) {
  // autocannon runs in this process: keep it off the server's CPU.
  execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
}

/** Requests completed in `seconds` against url (a warm-up second first). */
async function load(url: string, seconds: number): Promise<number> {
  if (!useWrk) {
    await autocannon!({ url, connections: opt.connections, duration: 1 });
    return (await autocannon!({ url, connections: opt.connections, duration: seconds })).requests.total;
  }
  const wrk = (d: number) =>
    new Promise<string>((resolve, reject) => {
      const args = ['-t1', `-c${opt.connections}`, `-d${d}s`, url];
      const child = pin ? spawn('taskset', ['-c', '1', 'wrk', ...args]) : spawn('wrk', args);
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}: ${out}`))));
    });
  await wrk(1);
  const out = await wrk(seconds);
  const m = /(\d+) requests in/.exec(out);
  if (!m) throw new Error(`wrk: no request count in: ${out}`);
  const errs = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (errs) throw new Error(`wrk reported errors: ${errs[0]}`);
  return Number(m[1]);
}

try {
  const m = machine();
  const tmp = tempDir('slipway-bench-hooks-');
  process.stderr.write(`building the orders release…\n`);
  const build = await buildRelease({ dir: path.join(here, '..', 'examples', 'orders'), out: path.join(tmp, 'build') });
  const live = {} as Record<Mode, { url: string; sup: number; worker: number }>;
  for (const mode of Object.keys(MODES) as Mode[]) {
    const root = path.join(tmp, mode);
    mkdirSync(root);
    await tar.x({ file: build.tarball, cwd: root });
    const port = await freePort();
    const bin = path.join(root, 'bin', 'orders');
    const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), SLIPWAY_WORKERS: '1', OTEL_TRACES_EXPORTER: 'none', ...MODES[mode].env };
    execFileSync(pin ? 'taskset' : bin, pin ? ['-c', '0', bin, 'daemon'] : ['daemon'], { env, stdio: 'ignore', timeout: 60_000 });
    onCleanup(`stop ${mode}`, () => void execFileSync(bin, ['stop'], { stdio: 'ignore', timeout: 60_000 }));
    const sup = new ReleaseRoot(root).info()!.pid;
    live[mode] = { url: `http://127.0.0.1:${port}/hello`, sup, worker: childPids(sup)[0]! };
  }

  type Run = { rps: number; workerUs: number; supUs: number };
  const runs = {} as Record<Mode, Run[]>;
  for (const mode of Object.keys(MODES) as Mode[]) runs[mode] = [];
  for (let round = 0; round < opt.rounds; round++) {
    const order = Object.keys(MODES) as Mode[];
    if (round % 2) order.reverse();
    for (const mode of order) {
      const l = live[mode];
      const w0 = cpuMs(l.worker);
      const s0 = cpuMs(l.sup);
      const n = await load(l.url, opt.seconds);
      // The counters include the warm-up second: per request over warm-up + run, rate over the run.
      const r: Run = { rps: n / opt.seconds, workerUs: ((cpuMs(l.worker) - w0) * 1000) / (n * (1 + 1 / opt.seconds)), supUs: ((cpuMs(l.sup) - s0) * 1000) / (n * (1 + 1 / opt.seconds)) };
      runs[mode].push(r);
      process.stderr.write(`round ${round + 1} ${mode.padEnd(15)} ${Math.round(r.rps)} req/s, CPU per request: worker ${r.workerUs.toFixed(1)} µs, supervisor ${r.supUs.toFixed(1)} µs\n`);
    }
  }

  const med = (mode: Mode, k: keyof Run) => median(runs[mode].map((r) => r[k]));
  const paired = (mode: Mode) => runs[mode].map((r, i) => r.rps / runs.off[i]!.rps);
  const cost = (mode: Mode) => (1 - median(paired(mode))) * 100;
  const rows = (Object.keys(MODES) as Mode[]).map((mode) => `| ${mode} | ${runs[mode].map((r) => Math.round(r.rps)).join(' / ')} | ${Math.round(med(mode, 'rps'))} | ${mode === 'off' ? '—' : paired(mode).map((x) => (x * 100).toFixed(0) + '%').join(' / ')} | ${mode === 'off' ? '—' : cost(mode).toFixed(1) + ' %'} | ${med(mode, 'workerUs').toFixed(1)} | ${med(mode, 'supUs').toFixed(1)} |`);
  const md = [
    '# Production hooks: cost on GET /hello',
    '',
    machineLine(m),
    '',
    `Setup: the orders example release, 1 worker per mode, all three modes running at once (SQLite default, OTel export off: OTEL_TRACES_EXPORTER=none; trace ids are still made and logged), measured one after the other, ${opt.rounds} rounds alternating the order; ${useWrk ? 'wrk (1 thread)' : 'autocannon'}, ${opt.connections} keep-alive connections, 1 s warm-up then ${opt.seconds} s per run. ${pin ? 'Daemons (supervisor and worker) pinned to CPU 0, the load generator to CPU 1, so the server is the bottleneck and the log capture competes with the worker, as it would on a machine with one worker per core.' : 'Not pinned (no taskset or one CPU): the load generator competes with the server.'}`,
    '',
    ...(Object.keys(MODES) as Mode[]).map((mode) => `- **${mode}**: ${MODES[mode].what}.`),
    '',
    '| mode | req/s per round | median req/s | throughput vs off, same round | cost (median of rounds) | worker CPU µs/req | supervisor CPU µs/req |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Cost of logging + metrics + context with the defaults: **${cost('on').toFixed(1)} %** of GET /hello throughput (budget 10 %). With the context on async_hooks: ${cost('on-async-hooks').toFixed(1)} %. Load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')}.`,
    `Reproduce: \`node --import tsx bench/hooks.ts --rounds ${opt.rounds} --seconds ${opt.seconds} --connections ${opt.connections}\` (install wrk for the numbers above: \`apt-get install wrk\`).`,
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
