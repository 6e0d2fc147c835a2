// Instructions per GET /hello request, counted by valgrind (callgrind), for the production-hook
// modes of bench/hooks.ts: a count that the shared machine's load does not move, and that
// attributes them by function (--keep). It still moves with the JIT's choices (what got inlined
// where, when compilation finished): runs of the same code differed by up to 5 % in "off" and
// 1 % in "on" here, so read a difference of a few hundred instructions from several runs. It
// counts instructions, not time (no cache misses, no kernel work): a guide, read beside
// bench/hooks.ts.
//
// The orders release's app runs standalone (`node app.mjs`, no supervisor) under callgrind on
// CPU 0; this process sends `--warm-up` requests, zeroes the counters, sends `--requests` more
// (keep-alive, `--connections` at a time) and reads the main thread's count and every thread's.
// Under valgrind the app runs ~50 times slower, so its timers would fire ~50 times as often per
// request as they do at full speed: the request-line batch timer (20 ms), the health checks
// (1 s) and the flags file poll (250 ms) are slowed by `--dilation` in the unpacked copy.
//
//   node --import tsx bench/instructions.ts                       (off and on, ~6 min)
//   node --import tsx bench/instructions.ts --tarball T.tar.gz --modes on --keep /tmp/cg
//   callgrind_annotate --inclusive=no /tmp/cg/on.callgrind   (JIT code: addresses in /tmp/cg/on.perf.map)
//
// Traffic only to 127.0.0.1; every process stopped and temp dir removed, also on failure.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { Pool } from 'undici';
import { buildRelease } from '../src/build/index.ts';
import { ReleaseRoot } from '../src/release/layout.ts';
import { permanentVersion } from '../src/release/releases-file.ts';
import { DEFAULT_REQUEST_LOG_RATE } from '../src/runtime/context.ts';
import { flags } from './lib/args.ts';
import { main, onCleanup, sleep, tempDir, trackPid, untrackPid } from './lib/cleanup.ts';
import { machine, machineLine } from './lib/machine.ts';
import { writeResults } from './lib/results.ts';
import { freePort, waitFor200 } from './lib/release.ts';
import { hasCommand, pinned } from './lib/turns.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODES: Record<string, Record<string, string>> = {
  off: { SLIPWAY_REQUEST_LOG: 'off', SLIPWAY_METRICS: 'off' },
  // The defaults; SLIPWAY_REQUEST_LOG_RATE is scaled by --dilation below (the cap is on wall time).
  on: {},
  all: { SLIPWAY_REQUEST_LOG: 'all' },
  errors: { SLIPWAY_REQUEST_LOG: 'errors' },
  'no-request-line': { SLIPWAY_REQUEST_LOG: 'off' },
  'context-off': { SLIPWAY_REQUEST_CONTEXT: 'off' },
};

const opt = flags('node --import tsx bench/instructions.ts — instructions per GET /hello under callgrind, hook modes side by side', {
  modes: { default: 'off,on', help: `modes (${Object.keys(MODES).join(', ')})` },
  tarball: { default: '', help: 'a release tarball of the orders example (default: build one)' },
  requests: { default: 10000, help: 'requests counted' },
  'warm-up': { default: 8000, help: 'requests before counting (the JIT settles)' },
  connections: { default: 16, help: 'keep-alive connections' },
  dilation: { default: 50, help: "how much slower the app's timers run (valgrind's slowdown)" },
  keep: { default: '', help: 'a directory to keep each mode\'s callgrind files (MODE.callgrind: the main thread; MODE.thread-NN.callgrind: the others) and V8 perf map in (for callgrind_annotate; JIT code addresses resolve through the map)' },
  out: { default: '', help: 'results JSON (default bench/results/instructions.json)' },
});

function usage(message: string): never {
  process.stderr.write(`instructions.ts: ${message} (--help lists the flags)\n`);
  process.exit(2);
}
const modes = opt.modes.split(',').filter(Boolean);
for (const m of modes) if (!MODES[m]) usage(`--modes: unknown mode "${m}" (known: ${Object.keys(MODES).join(', ')})`);
if (!hasCommand('valgrind') || !hasCommand('callgrind_control')) usage('needs valgrind (apt-get install valgrind)');
if (opt.tarball && !existsSync(opt.tarball)) usage(`no such tarball: ${opt.tarball}`);
if (!Number.isInteger(opt.requests) || opt.requests < 1000) usage(`--requests: a whole number from 1000, got ${opt.requests}`);
if (!Number.isInteger(opt['warm-up'])) usage(`--warm-up: a whole number, got ${opt['warm-up']}`);
if (!Number.isInteger(opt.connections) || opt.connections < 1) usage(`--connections: a whole number from 1, got ${opt.connections}`);
if (!(opt.dilation >= 1)) usage(`--dilation: at least 1, got ${opt.dilation}`);

/**
 * Slow the app's timers by `factor` in the bundle: each pattern must be found once, so that a
 * changed bundle fails here rather than being measured with its timers at full rate.
 */
function dilateTimers(appFile: string, factor: number): void {
  let text = readFileSync(appFile, 'utf8');
  const patches: Array<[RegExp, (ms: number) => string]> = [
    [/^var BATCH_MS = (\d+);$/m, (ms) => `var BATCH_MS = ${ms * factor};`],
    [/const every = this\.options\.intervalMs \?\? (\d+(?:e\d+)?);/, (ms) => `const every = (this.options.intervalMs ?? ${ms}) * ${factor};`],
    [/watch\(intervalMs = (\d+)\) \{/, (ms) => `watch(intervalMs = ${ms * factor}) {`],
  ];
  for (const [re, to] of patches) {
    const found = text.match(re);
    if (!found || text.match(new RegExp(re.source, re.flags + 'g'))!.length !== 1) throw new Error(`the app bundle has no single match for ${re} (the runtime changed: update bench/instructions.ts)`);
    text = text.replace(re, to(Number(found[1])));
  }
  writeFileSync(appFile, text);
}

/** `n` GET requests over `connections` keep-alive connections; throws on any non-200. */
async function send(url: string, n: number, connections: number): Promise<void> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections, pipelining: 1 });
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const r = await pool.request({ path: u.pathname, method: 'GET' });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`GET ${url}: ${r.statusCode}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    await pool.close();
  }
}

/** The "totals:" of a callgrind output file (its instruction count). */
function totals(file: string): number {
  const text = readFileSync(file, 'utf8');
  const m = /^totals:\s+(\d+)/m.exec(text) ?? /^summary:\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

interface Result {
  mode: string;
  mainPerRequest: number;
  allThreadsPerRequest: number;
}

/**
 * The cap on request lines counts lines a second of wall time, and under valgrind a second holds
 * --dilation times fewer requests: the cap is scaled down alike, so that "on" writes the share of
 * lines it writes at full speed (from DEFAULT_REQUEST_LOG_RATE, or SLIPWAY_REQUEST_LOG_RATE if set).
 */
function requestLogRate(): Record<string, string> {
  const rate = Number(process.env.SLIPWAY_REQUEST_LOG_RATE ?? DEFAULT_REQUEST_LOG_RATE);
  return { SLIPWAY_REQUEST_LOG_RATE: String(Math.max(1, Math.round(rate / opt.dilation))) };
}

async function measure(mode: string, tarball: string, dir: string): Promise<Result> {
  const root = path.join(dir, mode);
  mkdirSync(root, { recursive: true });
  await tar.x({ file: tarball, cwd: root });
  const rel = new ReleaseRoot(root);
  const version = permanentVersion(rel);
  if (!version) throw new Error(`${tarball}: no permanent release in releases/start.data`);
  const app = rel.appEntry(version);
  dilateTimers(app, opt.dilation);
  const port = await freePort();
  const out = path.join(root, 'callgrind.out');
  // vgdb's pipes (how callgrind_control reaches the run) in the temp dir, not in /tmp.
  const vgdbPrefix = `--vgdb-prefix=${path.join(root, 'vgdb')}`;
  const nodeFlags = opt.keep ? ['--no-memory-reducer', '--perf-basic-prof'] : ['--no-memory-reducer'];
  const argv = ['--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${out}`, '--smc-check=all-non-file', vgdbPrefix, process.execPath, ...nodeFlags, app];
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), RELEASE_ROOT: root, OTEL_TRACES_EXPORTER: 'none', ...requestLogRate(), ...MODES[mode] };
  const child = spawn(pinned ? 'taskset' : 'valgrind', pinned ? ['-c', '0', 'valgrind', ...argv] : argv, {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  trackPid(child.pid!);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // --perf-basic-prof writes /tmp/perf-PID.map: moved to --keep, or removed.
  const perfMap = `/tmp/perf-${child.pid}.map`;
  const stop = onCleanup(`stop ${mode}`, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    untrackPid(child.pid!);
    rmSync(perfMap, { force: true });
  });
  const url = `http://127.0.0.1:${port}/hello`;
  // Under valgrind a first answer takes seconds: probes of up to 60 s, once a second, for 300 s.
  await waitFor200(port, '/hello', performance.now(), 300_000, 1000, () => child.exitCode !== null, 60_000).catch((err: Error) => {
    throw new Error(`${mode}: ${err.message} while booting under valgrind${child.exitCode !== null ? `:\n${stderr}` : ''}`);
  });
  process.stderr.write(`${mode}: booted under valgrind; ${opt['warm-up']} warm-up requests…\n`);
  await send(url, opt['warm-up'], opt.connections);
  // taskset execs valgrind, which runs node in the same process: callgrind_control finds it by pid.
  const vpid = String(child.pid);
  // With the app's environment: valgrind names vgdb's pipes after $HOST (the app's bind address here).
  const control = (cmd: string) => execFileSync('callgrind_control', [vgdbPrefix, cmd, vpid], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  control('-z');
  process.stderr.write(`${mode}: counting ${opt.requests} requests…\n`);
  await send(url, opt.requests, opt.connections);
  const said = control('-d');
  // One file per thread of the dump: NAME.1-01 is the main thread. Callgrind takes the command
  // only while the program runs, so an idle app is sent one request at a time until it dumped
  // (at most the first of them falls in the count: 1 in --requests).
  const dumpFiles = () => readdirSync(root).filter((f) => /^callgrind\.out\.1-\d+$/.test(f));
  for (const until = Date.now() + 60_000; Date.now() < until && dumpFiles().length === 0; await sleep(300)) await send(url, 1, 1);
  // The first thread's file shows before the last one's is written.
  await sleep(1000);
  const dumps = dumpFiles().sort();
  const main = dumps.find((f) => f.endsWith('-01'));
  if (!main) throw new Error(`${mode}: callgrind wrote no dump (${readdirSync(root).join(', ')}; callgrind_control said: ${said.trim()})`);
  // Each file read once (they run to tens of MB).
  const perThread = dumps.map((f) => totals(path.join(root, f)));
  const mainIr = perThread[dumps.indexOf(main)]!;
  if (opt.keep) {
    mkdirSync(opt.keep, { recursive: true });
    copyFileSync(path.join(root, main), path.join(opt.keep, `${mode}.callgrind`));
    // The other threads (V8's GC and compiler helpers, libuv's pool) as MODE.thread-NN.callgrind.
    for (const f of dumps) if (f !== main) copyFileSync(path.join(root, f), path.join(opt.keep, `${mode}.thread-${f.slice(-2)}.callgrind`));
    if (existsSync(perfMap)) copyFileSync(perfMap, path.join(opt.keep, `${mode}.perf.map`));
  }
  const allIr = perThread.reduce((sum, n) => sum + n, 0);
  process.stderr.write(`${mode}: per thread, a request: ${perThread.map((n) => Math.round(n / opt.requests)).join(' / ')}\n`);
  await stop();
  const r = { mode, mainPerRequest: Math.round(mainIr / opt.requests), allThreadsPerRequest: Math.round(allIr / opt.requests) };
  process.stderr.write(`${mode}: ${r.mainPerRequest} instructions a request on the main thread, ${r.allThreadsPerRequest} on all threads\n`);
  return r;
}

await main(async () => {
  const m = machine();
  const tmp = tempDir('slipway-bench-instructions-');
  let tarball = opt.tarball ? path.resolve(opt.tarball) : '';
  if (!tarball) {
    process.stderr.write('building the orders release…\n');
    tarball = (await buildRelease({ dir: path.join(here, '..', 'examples', 'orders'), out: path.join(tmp, 'build') })).tarball;
  }
  const results: Result[] = [];
  for (const mode of modes) results.push(await measure(mode, tarball, tmp));
  const off = results.find((r) => r.mode === 'off');
  const pct = (a: number, b: number) => `${((1 - b / a) * 100).toFixed(1)} %`;
  const lines = [
    machineLine(m),
    '',
    `Instructions per GET /hello (callgrind, ${opt.requests} requests after ${opt['warm-up']}, ${opt.connections} keep-alive connections, timers slowed ${opt.dilation}×):`,
    '',
    '| mode | main thread | all threads | cost vs off (main thread) |',
    '|---|---|---|---|',
    ...results.map((r) => `| ${r.mode} | ${r.mainPerRequest} | ${r.allThreadsPerRequest} | ${off && r !== off ? pct(r.mainPerRequest, off.mainPerRequest) : '—'} |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  process.stderr.write(`results: ${writeResults('instructions', { machine: m, tarball: opt.tarball || 'built from examples/orders', requests: opt.requests, warmUp: opt['warm-up'], connections: opt.connections, dilation: opt.dilation, results }, opt.out || undefined)}\n`);
});
