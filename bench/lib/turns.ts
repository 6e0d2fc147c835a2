// Release daemons side by side on one core, taking turns: each side's supervisor and worker run
// while the others are SIGSTOPped, in short turns, so that the shared machine's swings hit every
// side alike; wrk loads every side for the whole round. Used by builds-ab.ts, idle.ts and hooks.ts.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { childPids, freePort } from '../../src/release/process.ts';
import { ReleaseRoot } from '../../src/release/layout.ts';
import { permanentVersion } from '../../src/release/releases-file.ts';
import { alive, killAll, onCleanup, sleep, trackPid, untrackPid } from './cleanup.ts';
import { cpuMs, mainThreadCpuMs } from './machine.ts';

export interface Side {
  name: string;
  tarball: string;
  /** Extra environment of the daemon. */
  env?: Record<string, string>;
  /** Written into the release's settings.nodeFlags when non-empty (worker node flags). */
  nodeFlags?: string[];
}

export interface Daemon {
  name: string;
  url: string;
  /** Supervisor and worker; a plain process (startPlain) has only its own. */
  pids: number[];
  /** Stop it now (`bin/NAME stop` and remove its release directory; a plain process: SIGTERM); otherwise done at cleanup. */
  stop(): Promise<void>;
}

export const hasCommand = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
/** Daemons on CPU 0, wrk on CPU 1, where there are two CPUs and taskset. */
export const pinned = os.cpus().length >= 2 && hasCommand('taskset');

/**
 * Unpack each side's tarball under `dir`, start it with `bin/NAME daemon` (1 worker, 127.0.0.1),
 * on CPU 0 when `pin` (default: when there are two CPUs and taskset).
 */
export async function startDaemons(sides: Side[], dir: string, pin = pinned): Promise<Daemon[]> {
  const live: Daemon[] = [];
  for (const side of sides) {
    const root = path.join(dir, side.name.replace(/[^\w.-]+/g, '-'));
    mkdirSync(root);
    await tar.x({ file: side.tarball, cwd: root });
    const release = new ReleaseRoot(root);
    const version = permanentVersion(release);
    if (!version) throw new Error(`${side.tarball}: no permanent release in releases/start.data`);
    const manifest = path.join(release.versionDir(version), 'release.json');
    const rel = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string; settings: { nodeFlags: string[] } };
    if (side.nodeFlags?.length) rel.settings.nodeFlags = side.nodeFlags;
    writeFileSync(manifest, JSON.stringify(rel, null, 2));
    const port = await freePort();
    const bin = path.join(root, 'bin', rel.name);
    const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), SLIPWAY_WORKERS: '1', OTEL_TRACES_EXPORTER: 'none', ...side.env };
    execFileSync(pin ? 'taskset' : bin, pin ? ['-c', '0', bin, 'daemon'] : ['daemon'], { env, stdio: 'ignore', timeout: 60_000 });
    const daemon: Daemon = { name: side.name, url: `http://127.0.0.1:${port}/hello`, pids: [], stop: async () => undefined };
    const stop = onCleanup(`stop ${side.name}`, () => {
      // A run cut short may leave it stopped (SIGSTOP): let it run to stop it.
      for (const pid of daemon.pids) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // gone
        }
      }
      execFileSync(bin, ['stop'], { stdio: 'ignore', timeout: 60_000 });
      rmSync(root, { recursive: true, force: true });
    });
    daemon.stop = stop;
    const sup = release.info()!.pid;
    daemon.pids.push(sup, childPids(sup)[0]!);
    live.push(daemon);
  }
  return live;
}

/**
 * A plain node process as a side (no supervisor): `node FLAGS SCRIPT` with its env and PORT on
 * 127.0.0.1, in a session of its own like a daemon, on CPU 0 when `pin`; its output appended to
 * `dir`/NAME.log. Ready once GET /hello answers 200 (30 s at most).
 */
export async function startPlain(side: { name: string; script: string; env?: Record<string, string>; nodeFlags?: readonly string[] }, dir: string, pin = pinned): Promise<Daemon> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/hello`;
  const fd = openSync(path.join(dir, `${side.name.replace(/[^\w.-]+/g, '-')}.log`), 'a');
  const args = [process.execPath, ...(side.nodeFlags ?? []), side.script];
  const child = spawn(pin ? 'taskset' : args[0]!, pin ? ['-c', '0', ...args] : args.slice(1), {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), ...side.env },
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  const pid = child.pid!;
  trackPid(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = onCleanup(`stop ${side.name} (pid ${pid})`, async () => {
    if (alive(pid)) {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (alive(pid)) killAll([pid]);
    }
    untrackPid(pid);
  });
  const daemon: Daemon = { name: side.name, url, pids: [pid], stop };
  for (const until = Date.now() + 30_000; ; await sleep(100)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${side.name}: exited before it answered (see ${dir})`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return daemon;
    if (Date.now() > until) {
      await stop();
      throw new Error(`${side.name}: no 200 from ${url} within 30 s`);
    }
  }
}

/** Requests wrk completed against `url` in `seconds` (1 thread, on CPU 1 when `pin`); any error or non-2xx fails. */
export function wrkCount(url: string, seconds: number, connections: number, pin = pinned): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, url];
    const child = pin ? spawn('taskset', ['-c', '1', 'wrk', ...args]) : spawn('wrk', args);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', () => {
      const m = /(\d+) requests in/.exec(out);
      const errs = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
      if (!m) reject(new Error(`wrk: no request count in: ${out}`));
      else if (errs) reject(new Error(`wrk reported errors: ${errs[0]}`));
      else resolve(Number(m[1]));
    });
  });
}

/** Requests a load generator completed against `url` in `seconds`. */
export type Load = (url: string, seconds: number) => Promise<number>;

/**
 * A daemon's requests in a round and its CPU per request: all its processes, each (Daemon.pids
 * order), and each process's main thread alone.
 */
export interface Measured {
  n: number;
  us: number;
  pidUs: number[];
  mainUs: number[];
}

/** Every daemon loaded at once for `seconds` (all of them running); CPU per request over the same window. */
export async function loadAll(daemons: Daemon[], seconds: number, load: Load): Promise<Measured[]> {
  const cpu0 = daemons.map((d) => d.pids.map(cpuMs));
  const main0 = daemons.map((d) => d.pids.map(mainThreadCpuMs));
  const counts = await Promise.all(daemons.map((d) => load(d.url, seconds)));
  return daemons.map((d, i) => {
    const n = counts[i]!;
    const pidUs = d.pids.map((pid, k) => ((cpuMs(pid) - cpu0[i]![k]!) * 1000) / n);
    const mainUs = d.pids.map((pid, k) => ((mainThreadCpuMs(pid) - main0[i]![k]!) * 1000) / n);
    return { n, us: pidUs.reduce((a, b) => a + b, 0), pidUs, mainUs };
  });
}

/**
 * One round: every daemon loaded for `seconds`, only one side running at a time (turns of
 * `sliceMs`). `load`: a load generator, or the connections of wrk (1 thread).
 */
export async function takeTurns(daemons: Daemon[], seconds: number, sliceMs: number, load: number | Load): Promise<Measured[]> {
  const signal = (i: number, sig: NodeJS.Signals) => daemons[i]!.pids.forEach((pid) => process.kill(pid, sig));
  let turn = 0;
  daemons.forEach((_, i) => signal(i, i === 0 ? 'SIGCONT' : 'SIGSTOP'));
  const ticker = setInterval(() => {
    signal(turn, 'SIGSTOP');
    turn = (turn + 1) % daemons.length;
    signal(turn, 'SIGCONT');
  }, sliceMs);
  try {
    return await loadAll(daemons, seconds, typeof load === 'number' ? (url, s) => wrkCount(url, s, load) : load);
  } finally {
    clearInterval(ticker);
    daemons.forEach((_, i) => signal(i, 'SIGCONT'));
  }
}
