// Shared test helpers: build the example release, deploy its tarball into a temp dir (as on a
// target host, away from the source tree), run bin/orders commands, and clean up every process
// and directory afterwards, even when a test fails. Before a deployed release is removed, every
// file under its log/ is searched for the secrets the tests used (passwords in the URLs they gave
// it, and values a test named with neverLogged): one found fails the test file.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { buildRelease, type BuildResult } from '../../src/build/index.ts';
import { alive, childPids, freePort } from '../../src/release/process.ts';
import { ReleaseRoot } from '../../src/release/layout.ts';
import type { SupervisorInfo } from '../../src/protocol.ts';

export { alive, childPids, freePort };

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ORDERS = path.join(REPO, 'examples', 'orders');

const cleanups: Array<() => Promise<void> | void> = [];
let hooked = false;

/** Register a cleanup that runs at the end of the test file (LIFO), whatever happened. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      // Last resort: synchronous kills of anything still registered.
      for (const pid of livePids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
  }
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (err) {
      console.error('cleanup failed:', err);
    }
  }
  if (leaks.length) {
    const found = leaks.splice(0);
    throw new Error(`secret values in log files: ${found.join('; ')}`);
  }
}

const secrets = new Set<string>();
const leaks: string[] = [];

/**
 * Values that must never appear in a log file of a release these tests deployed. Shorter than 6
 * characters they are not searched for (a one-letter password would match anywhere).
 */
export function neverLogged(...values: string[]): void {
  for (const v of values) if (v.length >= 6) secrets.add(v);
}

/** The passwords of URLs in an environment (DATABASE_URL and the like). */
function urlSecrets(env: NodeJS.ProcessEnv): void {
  for (const v of Object.values(env)) {
    if (!v?.includes('://')) continue;
    try {
      const password = new URL(v).password;
      if (password) neverLogged(decodeURIComponent(password));
    } catch {
      // not a URL
    }
  }
}

/** Every file under a release's log/ (rotated logs, crash reports), at any depth. */
export function logFiles(root: string): string[] {
  const walk = (d: string): string[] => readdirSync(d).flatMap((e) => (statSync(path.join(d, e)).isDirectory() ? walk(path.join(d, e)) : [path.join(d, e)]));
  const dir = path.join(root, 'log');
  return existsSync(dir) ? walk(dir) : [];
}

function scanLogs(root: string): void {
  for (const file of logFiles(root)) {
    const text = readFileSync(file, 'utf8');
    for (const s of secrets) if (text.includes(s)) leaks.push(`"${s}" in ${path.relative(root, file)}`);
  }
}

const livePids = new Set<number>();

export function tempDir(prefix = 'slipway-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Build the orders example into a temp output dir. */
export async function buildOrders(opts: { version?: string; overlay?: string; includeNode?: boolean } = {}): Promise<BuildResult> {
  const out = tempDir('slipway-build-');
  return buildRelease({ dir: ORDERS, out, version: opts.version, overlay: opts.overlay, includeNode: opts.includeNode });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the `slipway` CLI (bin/slipway.js) in the repo, bounded in time (a timeout is exit 1). */
export function slipway(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO, 'bin', 'slipway.js'), ...args], { cwd: REPO, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export class Deployed {
  constructor(
    readonly root: string,
    readonly name: string,
    readonly env: NodeJS.ProcessEnv,
  ) {
    urlSecrets(env);
  }

  get bin(): string {
    return path.join(this.root, 'bin', this.name);
  }

  /** Run `bin/NAME ...args`. */
  run(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<RunResult> {
    urlSecrets(env);
    return new Promise((resolve) => {
      execFile(this.bin, args, { env: { ...process.env, ...this.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /**
   * `bin/NAME daemon`, registering a cleanup that stops (or kills) the supervisor and its workers.
   * `hideSource`: run it in a mount namespace where a tmpfs covers this repository, so that the
   * release can use nothing of the source tree or its node_modules (as on a target host).
   */
  async daemon(env: NodeJS.ProcessEnv = {}, opts: { hideSource?: boolean } = {}): Promise<RunResult> {
    urlSecrets(env);
    const r = opts.hideSource
      ? await new Promise<RunResult>((resolve) => {
          const script = 'mount --make-rprivate / && mount -t tmpfs tmpfs "$1" && shift && exec "$@"';
          execFile('unshare', ['-m', 'sh', '-c', script, 'sh', REPO, this.bin, 'daemon'], { env: { ...process.env, ...this.env, ...env } }, (err, stdout, stderr) =>
            resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
          );
        })
      : await this.run(['daemon'], env);
    const info = this.info();
    if (info) this.track(info.pid);
    return r;
  }

  /** `bin/NAME start` in the foreground as a child process (for signal tests). */
  startForeground(env: NodeJS.ProcessEnv = {}) {
    urlSecrets(env);
    const child = spawn(this.bin, ['start'], { env: { ...process.env, ...this.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    if (child.pid) this.track(child.pid);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    return { child, exited, output: () => ({ stdout, stderr }) };
  }

  info(): SupervisorInfo | undefined {
    return new ReleaseRoot(this.root).info();
  }

  private track(pid: number): void {
    if (livePids.has(pid)) return;
    livePids.add(pid);
    onCleanup(async () => {
      if (!alive(pid)) {
        livePids.delete(pid);
        return;
      }
      const workers = childPids(pid);
      await this.run(['stop'], {}, 60_000);
      for (const p of [pid, ...workers]) {
        if (alive(p)) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
      livePids.delete(pid);
    });
  }

  /** Pids of the workers the supervisor has now (from `status --json`). */
  async workerPids(): Promise<number[]> {
    const r = await this.run(['status', '--json']);
    if (r.code !== 0) return [];
    return (JSON.parse(r.stdout) as { workers: Array<{ pid: number }> }).workers.map((w) => w.pid);
  }

  url(p: string): string {
    const info = this.info();
    if (!info) throw new Error('release is not running');
    return `http://127.0.0.1:${info.port}${p}`;
  }
}

/** Extract a release tarball into a fresh directory, as a deploy to a target host would. */
export async function deploy(build: BuildResult, env: NodeJS.ProcessEnv = {}): Promise<Deployed> {
  const root = tempDir('slipway-deploy-');
  await tar.x({ file: build.tarball, cwd: root });
  // Runs after the release is stopped (registered later) and before its directory goes.
  onCleanup(() => scanLogs(root));
  return new Deployed(root, build.name, { HOST: '127.0.0.1', ...env });
}




export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
