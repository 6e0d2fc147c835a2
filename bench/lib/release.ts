// The contenders' processes: the orders example built once per run (one build per version, into a
// temp dir), deployed from its tarball into fresh dirs; `bin/orders` daemon/start/stop/install/
// upgrade; the same bundle run as plain node (standalone mode binds PORT itself). Every process
// is registered for cleanup.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as tar from 'tar';
import { buildRelease, type BuildResult } from '../../src/build/index.ts';
import { alive, descendants, killAll, onCleanup, sleep, tempDir, trackPid, untrackPid } from './cleanup.ts';
import { REPO } from './results.ts';
import { freePort } from '../../src/release/process.ts';
import { ReleaseRoot } from '../../src/release/layout.ts';

export { freePort };

export const ORDERS = path.join(REPO, 'examples', 'orders');

/**
 * Environment every contender gets: no telemetry exporters; LOG_LEVEL warn by default, so that
 * the per-request JSON log lines (info) are off and the data path is what is measured. Use
 * setLogLevel('info') to measure with request logs on (the release's workers then write them to
 * the supervisor's log capture; plain node appends them to a file, as `>> app.log` would).
 */
export const BASE_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  OTEL_TRACES_EXPORTER: 'none',
  OTEL_METRICS_EXPORTER: 'none',
  OTEL_LOGS_EXPORTER: 'none',
  NODE_ENV: 'production',
};

export function setLogLevel(level: string): void {
  BASE_ENV.LOG_LEVEL = level;
}

const builds = new Map<string, Promise<BuildResult>>();
let buildRoot: string | undefined;

/** Build the orders example at `version` (once per benchmark run). */
export function buildOrders(version: string): Promise<BuildResult> {
  let b = builds.get(version);
  if (!b) {
    buildRoot ??= tempDir('slipway-bench-build-');
    b = buildRelease({ dir: ORDERS, out: path.join(buildRoot, version), version });
    builds.set(version, b);
  }
  return b;
}


export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** One GET on a fresh connection; resolves with the status code (0 on a connection error). */
export function probe(port: number, p: string, timeoutMs = 1000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Poll GET path every `everyMs` until it answers 200; returns ms since `since` (performance.now()). */
export async function waitFor200(port: number, p: string, since: number, timeoutMs = 30_000, everyMs = 5, exited?: () => boolean, probeMs = 1000): Promise<number> {
  const deadline = since + timeoutMs;
  for (;;) {
    if ((await probe(port, p, probeMs)) === 200) return performance.now() - since;
    if (exited?.()) throw new Error(`process exited before ${p} answered 200`);
    if (performance.now() > deadline) throw new Error(`no 200 on ${p} after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

/** A release deployed from its tarball into a fresh directory, as on a target host. */
export class Deployed {
  supervisorPid: number | undefined;
  private stopNow: (() => Promise<void>) | undefined;

  private constructor(
    readonly root: string,
    readonly name: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  static async deploy(build: BuildResult, env: NodeJS.ProcessEnv): Promise<Deployed> {
    const root = tempDir('slipway-bench-deploy-');
    await tar.x({ file: build.tarball, cwd: root });
    return new Deployed(root, build.name, { ...BASE_ENV, ...env });
  }

  get bin(): string {
    return path.join(this.root, 'bin', this.name);
  }

  run(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<RunResult> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      execFile(this.bin, args, { env: { ...this.env, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - t0 });
      });
    });
  }

  async runOk(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<RunResult> {
    const r = await this.run(args, env, timeoutMs);
    if (r.code !== 0) throw new Error(`bin/${this.name} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  }

  /** `bin/NAME daemon`; registers a cleanup (stop, then SIGKILL of the supervisor and its workers). */
  async daemon(env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const r = await this.run(['daemon'], env);
    const pid = this.pidFromFile();
    if (pid) this.track(pid);
    if (r.code !== 0) throw new Error(`bin/${this.name} daemon failed (${r.code}): ${r.stderr.trim()}`);
    return r;
  }

  /** `bin/NAME start` in the foreground (the sh script execs node: the child pid is the supervisor). */
  startForeground(env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(this.bin, ['start'], { env: { ...this.env, ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
    if (child.pid) this.track(child.pid);
    return child;
  }

  pidFromFile(): number | undefined {
    return new ReleaseRoot(this.root).info()?.pid;
  }

  private track(pid: number): void {
    this.supervisorPid = pid;
    trackPid(pid);
    this.stopNow = onCleanup(`stop supervisor ${pid}`, async () => {
      if (!alive(pid)) return void untrackPid(pid);
      const tree = descendants(pid);
      for (const w of tree) trackPid(w);
      await this.run(['stop'], {}, 60_000);
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
      killAll([pid, ...tree]);
      untrackPid(pid);
      for (const w of tree) untrackPid(w);
    });
  }

  /** Stop the running supervisor now (graceful, with a SIGKILL fallback). */
  async stop(): Promise<void> {
    const s = this.stopNow;
    this.stopNow = undefined;
    await s?.();
  }

  async status(): Promise<{ pid: number; version: string; workers: Array<{ pid?: number; version: string; state: string }> }> {
    const r = await this.runOk(['status', '--json']);
    return JSON.parse(r.stdout);
  }
}

/** The same app bundle run as plain node: `node releases/VSN/app/app.mjs` with PORT set. */
export class PlainNode {
  child: ChildProcess | undefined;
  exited = false;
  private stopNow: (() => Promise<void>) | undefined;

  constructor(
    readonly appEntry: string,
    readonly port: number,
    readonly varDir: string,
    /** node flags for the plain run (none by default: plain `node app.mjs`) */
    readonly nodeFlags: string[] = [],
  ) {
    mkdirSync(varDir, { recursive: true });
  }

  static fromDeploy(d: Deployed, version: string, port: number, varDir: string, nodeFlags: string[] = []): PlainNode {
    return new PlainNode(path.join(d.root, 'releases', version, 'app', 'app.mjs'), port, varDir, nodeFlags);
  }

  start(): ChildProcess {
    this.exited = false;
    // stdout and stderr appended to a file beside the var dir, as `node app.mjs >> app.log 2>&1`.
    const fd = openSync(path.join(path.dirname(this.varDir), 'plain-node.log'), 'a');
    // detached (setsid), like `bin/orders daemon` and the PM2 daemon: with the kernel's scheduler
    // autogroups on, every session shares CPU as one group, so all contenders get their own.
    const child = spawn(process.execPath, [...this.nodeFlags, this.appEntry], {
      env: { ...BASE_ENV, PORT: String(this.port), RELEASE_VAR: this.varDir, SLIPWAY_MODE: 'standalone' },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    this.child = child;
    child.once('exit', () => (this.exited = true));
    const pid = child.pid!;
    trackPid(pid);
    this.stopNow = onCleanup(`stop plain node ${pid}`, async () => {
      await this.terminate(child, pid);
    });
    return child;
  }

  private async terminate(child: ChildProcess, pid: number): Promise<void> {
    if (alive(pid)) {
      const exited = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (alive(pid)) killAll([pid]);
    }
    untrackPid(pid);
  }

  /** SIGTERM (the runtime drains), wait for exit; SIGKILL after 10 s. */
  async stop(): Promise<void> {
    const s = this.stopNow;
    this.stopNow = undefined;
    await s?.();
  }
}
