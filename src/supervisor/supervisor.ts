// The supervisor: owns the listening socket, keeps N workers of the current release running
// (restart intensity as in OTP), watches their heartbeats (heart), captures their output (run_erl)
// and switches releases without dropping a request (release_handler).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkerEnv, type LogLevel, type RequestLogMode, type ToWorker, type SupervisorInfo, type SupervisorStatus, type WorkerState } from '../protocol.ts';
import { ReleaseRoot, VERSION_PATTERN } from '../release/layout.ts';
import { readReleases, setState, permanentVersion, pruneReleases } from '../release/releases-file.ts';
import type { Settings } from './settings.ts';
import { bindListenSocket, type ListenSocket } from './sockets.ts';
import { RotatingLog, lineSplitter } from './logs.ts';
import { WorkerProcess, appArgv, type WorkerExit } from './worker.ts';
import { SwitchError, type SwitchKind } from './errors.ts';
import { SupervisorMetrics } from './metrics.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SupervisorOptions {
  rel: ReleaseRoot;
  version: string;
  settings: Settings;
  node: string;
  /** Echo logs to stdout (foreground `start`); off under `daemon`. */
  echo: boolean;
  notify?: (state: string) => void;
}

type Progress = (msg: string) => void;

interface Bake {
  version: string;
  previous: string;
  until: number;
  timer: NodeJS.Timeout;
}

export class Supervisor {
  readonly rel: ReleaseRoot;
  readonly settings: Settings;
  current: string;
  state: SupervisorStatus['state'] = 'starting';
  workers: WorkerProcess[] = [];
  private listen!: ListenSocket;
  private log: RotatingLog | undefined;
  private crashTimes: number[] = [];
  private bootFailures = 0;
  private totalRestarts = 0;
  private nextWorkerId = 1;
  /** Settings changed at runtime (`bin/NAME log-level`, `request-log`), in the env of workers started later. */
  private runtimeEnv: Record<string, string> = {};
  private heartTimer: NodeJS.Timeout | undefined;
  private bake: Bake | undefined;
  private events: Array<{ at: string; msg: string }> = [];
  private readonly startedAt = Date.now();
  private exiting = false;
  /** Crash/restart/upgrade counters and the aggregated /metrics (see metrics.ts). */
  readonly metrics: SupervisorMetrics;
  onExit: (code: number) => void = (code) => process.exit(code);

  constructor(private readonly opts: SupervisorOptions) {
    this.rel = opts.rel;
    this.settings = opts.settings;
    this.current = opts.version;
    this.metrics = new SupervisorMetrics(this, opts.settings.name);
  }

  // ── logging ────────────────────────────────────────────────────────────────────────────────

  logLine(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ level, time: new Date().toISOString(), service: this.settings.name, component: 'supervisor', pid: process.pid, msg, ...fields });
    if (this.log) this.log.write(line + '\n');
    else process.stderr.write(line + '\n');
  }

  private event(msg: string, level: 'info' | 'warn' | 'error' = 'info', fields: Record<string, unknown> = {}): void {
    this.events.push({ at: new Date().toISOString(), msg });
    if (this.events.length > 50) this.events.shift();
    this.logLine(level, msg, fields);
  }

  // ── boot ───────────────────────────────────────────────────────────────────────────────────

  async start(): Promise<void> {
    const { rel, settings } = this;
    mkdirSync(rel.tmpDir, { recursive: true, mode: 0o700 });
    this.log = new RotatingLog(path.join(rel.logDir, `${settings.name}.log`), settings.logMaxBytes, settings.logGenerations, this.opts.echo, () => {
      for (const w of this.workers) w.send({ t: 'log-reopen' });
    });
    this.listen = await bindListenSocket(settings.host, settings.port);
    this.writeInfo();
    writeFileSync(path.join(rel.tmpDir, `${settings.name}.pid`), `${process.pid}\n`);
    rmSync(rel.lastExitFile, { force: true });
    this.event(`supervisor started: ${settings.name} ${this.current}, ${settings.workers} worker(s) on ${this.listen.host}:${this.listen.port}${this.listen.activated ? ' (socket activation)' : ''}`);

    for (let i = 0; i < settings.workers; i++) this.spawnWorker(this.current, 0);
    this.heartTimer = setInterval(() => this.heart(), Math.min(250, settings.heartIntervalMs)).unref();
    this.state = 'running';
  }

  /** Resolves when `n` workers of the current release are ready; rejects if the supervisor exits first. */
  whenReady(n = 1): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.readyWorkers(this.current).length >= n) {
          resolve();
          return true;
        }
        return false;
      };
      if (check()) return;
      const t = setInterval(() => check() && clearInterval(t), 20);
    });
  }

  readyWorkers(version?: string): WorkerProcess[] {
    return this.workers.filter((w) => w.state === 'ready' && !w.failing && (version === undefined || w.version === version));
  }

  private workerSpec(version: string, restarts: number, holdAccept = false) {
    return {
      holdAccept,
      id: this.nextWorkerId++,
      version,
      node: this.opts.node,
      envSh: this.rel.envSh(version),
      appEntry: this.rel.appEntry(version),
      nodeFlags: this.settings.nodeFlags,
      listenFd: this.listen.fd,
      // Nothing to echo (daemon): workers append their log lines to the file themselves (logs.ts).
      env: {
        ...process.env,
        RELEASE_ROOT: this.rel.root,
        ...(this.opts.echo || !this.log ? {} : { [WorkerEnv.logFile]: this.log.file, [WorkerEnv.logMaxBytes]: String(this.settings.logMaxBytes) }),
        ...this.runtimeEnv,
      },
      stopTimeoutMs: this.settings.stopTimeoutMs,
      drainDelayMs: this.settings.drainDelayMs,
      heartIntervalMs: this.settings.heartIntervalMs,
      restarts,
      onOutput: (text: string | Buffer) => this.log?.write(text),
    };
  }

  spawnWorker(version: string, restarts: number, holdAccept = false): WorkerProcess {
    const w = new WorkerProcess(this.workerSpec(version, restarts, holdAccept));
    this.workers.push(w);
    this.metrics.watch(w);
    this.logLine('info', `worker ${w.pid} starting (${version})`, { worker: w.id, version });
    w.on('state', (state: WorkerState, failing?: string) => this.onWorkerState(w, state, failing));
    // Rotated: every worker is told to reopen. Not rotated (another worker's request already did):
    // this one reopens too, rather than wait for the answer it asked for.
    w.on('log-full', (bytes: number) => this.log?.check(bytes) || w.send({ t: 'log-reopen' }));
    w.on('cut', (requests: unknown[]) => this.event(`worker ${w.pid}: stop timeout cut ${requests.length} request(s)`, 'warn', { requests }));
    w.on('exit', (exit: WorkerExit) => this.onWorkerExit(w, exit));
    return w;
  }

  private onWorkerState(w: WorkerProcess, state: WorkerState, failing?: string): void {
    if (state === 'ready' && !failing) {
      this.bootFailures = 0;
      this.logLine('info', `worker ${w.pid} ready (${w.version}) in ${Date.now() - w.startedAt} ms`, { worker: w.id });
      if (this.readyWorkers().length === 1) this.opts.notify?.('READY=1');
    } else if (failing) {
      this.event(`worker ${w.pid} not ready: ${failing}`, 'warn', { worker: w.id });
      if (this.bake && w.version === this.bake.version && w.readyAt !== undefined && state === 'ready') {
        void this.autoRollback(`readiness failed on worker ${w.pid}: ${failing}`);
      }
    }
  }

  private onWorkerExit(w: WorkerProcess, exit: WorkerExit): void {
    this.workers = this.workers.filter((x) => x !== w);
    const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    if (exit.expected || this.state === 'stopping' || this.exiting) {
      this.logLine('info', `worker ${w.pid} stopped (${how})`, { worker: w.id });
      return;
    }
    const reason = exit.fatal?.message ?? `exited with ${how}`;
    this.event(`worker ${w.pid} (${w.version}) crashed: ${firstLine(reason)}`, 'error', { worker: w.id, code: exit.code, signal: exit.signal });
    if (w.version !== this.current) return; // an upgrade candidate or a leftover: the switch logic owns it

    if (this.bake && this.bake.version === w.version) {
      void this.autoRollback(`worker ${w.pid} crashed: ${firstLine(reason)}`);
      return;
    }
    // A config error is deterministic: restarting cannot help.
    if (exit.fatal?.kind === 'config' && this.readyWorkers().length === 0) {
      this.fatal(firstLine(exit.fatal.message));
      return;
    }
    const now = Date.now();
    this.crashTimes = this.crashTimes.filter((t) => now - t < this.settings.maxSeconds * 1000);
    this.crashTimes.push(now);
    // A worker that dies before it was ever ready fails the same way next time, however slowly it
    // boots: consecutive boot failures count against max_restarts whatever the time window.
    this.bootFailures = w.readyAt === undefined ? this.bootFailures + 1 : 0;
    if (this.bootFailures > this.settings.maxRestarts) {
      this.fatal(`worker failed to boot ${this.bootFailures} times in a row (limit: max_restarts ${this.settings.maxRestarts}); last: ${firstLine(reason)}`);
      return;
    }
    if (this.crashTimes.length > this.settings.maxRestarts) {
      this.fatal(
        `worker crashed ${this.crashTimes.length} times in ${this.settings.maxSeconds}s (limit: max_restarts ${this.settings.maxRestarts} in ${this.settings.maxSeconds}s); last: ${firstLine(reason)}`,
      );
      return;
    }
    // Back off so that a crash loop cannot spin: 100 ms, 200 ms, 400 ms … up to 5 s.
    const delay = Math.min(5000, 100 * 2 ** (this.crashTimes.length - 1));
    this.totalRestarts++;
    setTimeout(() => {
      if (this.state === 'stopping' || this.exiting) return;
      const alive = this.workers.filter((x) => x.version === this.current && x.state !== 'draining').length;
      if (alive < this.settings.workers) this.spawnWorker(this.current, w.restarts + 1);
    }, delay);
  }

  /** heart: a worker whose event loop stops sending heartbeats is killed and replaced. */
  private heart(): void {
    const now = Date.now();
    if (!this.opts.echo) this.log?.check();
    for (const w of this.workers) {
      if (w.exited) continue;
      const silent = now - w.lastBeat;
      if (silent > this.settings.heartTimeoutMs) {
        this.event(`heart: worker ${w.pid} sent no heartbeat for ${silent} ms (heart timeout ${this.settings.heartTimeoutMs} ms; event loop blocked or process stopped): killing it`, 'error', { worker: w.id });
        w.lastBeat = Infinity; // once
        void w.kill(w.state === 'draining');
      }
    }
    this.opts.notify?.('WATCHDOG=1');
  }

  // ── switching releases ─────────────────────────────────────────────────────────────────────

  /** Run the release's migrate hook in a fresh process (the migration gate). */
  runMigrations(version: string, progress: Progress): Promise<void> {
    progress(`running migrations of ${version} (migration gate)`);
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', appArgv(this.rel.envSh(version), this.opts.node, this.settings.nodeFlags, this.rel.appEntry(version)), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, RELEASE_ROOT: this.rel.root, RELEASE_VSN: version, SLIPWAY_MODE: 'migrate' },
      });
      let lastErr = '';
      const out = lineSplitter((t) => this.log?.write(t));
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => {
        const text = c.toString();
        this.log?.write(text);
        // The migrate process states its failure in one "NAME: …" line; logs may follow it.
        const lines = text.split('\n').filter((l) => l.startsWith(`${this.settings.name}: `));
        if (lines.length) lastErr = lines[lines.length - 1]!.slice(this.settings.name.length + 2);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        out.flush();
        if (code === 0) return resolve();
        reject(new SwitchError('migration', `migrations of ${version} failed (${signal ?? 'code ' + code}): ${lastErr || 'no output'}`));
      });
    });
  }

  private waitReady(w: WorkerProcess, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        w.off('state', onState);
        w.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      const onState = (s: WorkerState, failing?: string) => s === 'ready' && !failing && done();
      const onExit = (exit: WorkerExit) =>
        done(new SwitchError('crashed', `new worker ${w.pid} exited before it was ready: ${firstLine(exit.fatal?.message ?? (exit.signal ?? `code ${exit.code}`))}`));
      const timer = setTimeout(() => done(new SwitchError('ready-timeout', `new worker ${w.pid} not ready after ${timeoutMs} ms${w.failing ? ` (failing: ${w.failing})` : ''}`)), timeoutMs);
      w.on('state', onState);
      w.on('exit', onExit);
      if (w.state === 'ready' && !w.failing) done();
    });
  }

  /**
   * Switch the serving release to `version`: start new workers on the shared socket one at a
   * time, each gated on readiness and not accepting yet; when all are ready, they start accepting
   * and the old ones stop, then drain, all at once.
   * Any failure before the switch stops the new workers and leaves the old release serving.
   */
  async switchTo(version: string, kind: SwitchKind, progress: Progress = () => undefined): Promise<{ from: string; to: string; ms: number }> {
    if (this.state !== 'running') throw new SwitchError('busy', `cannot ${kind}: supervisor is ${this.state}`);
    // A version is a directory name under releases/: nothing that walks out of it ("../x").
    if (!VERSION_PATTERN.test(version)) throw new SwitchError('missing', `${JSON.stringify(version)} is not a release version (letters, digits, . + _ -, at most 64)`);
    if (!existsSync(this.rel.appEntry(version))) throw new SwitchError('missing', `release ${version} is not installed (no ${path.relative(this.rel.root, this.rel.appEntry(version))}); run: bin/${this.settings.name} install TARBALL`);
    const manifest = this.rel.manifest(version);
    if (manifest.name !== this.settings.name) throw new SwitchError('wrong-app', `release ${version} is for "${manifest.name}", not "${this.settings.name}"`);
    const started = Date.now();
    const from = this.current;
    this.state = 'upgrading';
    this.opts.notify?.('RELOADING=1');
    if (this.bake && kind !== 'upgrade') this.cancelBake();
    this.event(`${kind} ${from} → ${version} started`);
    const fresh: WorkerProcess[] = [];
    try {
      if (kind === 'upgrade') await this.runMigrations(version, progress);
      // Started holding: ready, but accepting only from the switch on, so that until then the old
      // release alone takes new connections (no mix of both for as long as the new ones boot).
      for (let i = 0; i < this.settings.workers; i++) {
        const w = this.spawnWorker(version, 0, true);
        fresh.push(w);
        progress(`started worker ${w.pid} (${version}), waiting for ready`);
        await this.waitReady(w, this.settings.readyTimeoutMs);
        progress(`worker ${w.pid} ready`);
      }
      // One that got ready may have died while the next ones booted: do not switch to fewer.
      const lost = fresh.find((w) => w.exited);
      if (lost) throw new SwitchError('crashed', `new worker ${lost.pid} exited after it was ready, before the switch`);
    } catch (err) {
      // New workers that got ready may have accepted connections (a release whose runtime does not
      // hold them back): drain them. The others never listened.
      await Promise.all(fresh.map((w) => (w.readyAt !== undefined ? w.stop(`${kind} aborted`, true) : w.kill(true))));
      this.state = 'running';
      this.opts.notify?.('READY=1');
      const msg = `${kind} to ${version} aborted: ${(err as Error).message}; ${from} still serving`;
      this.event(msg, 'error');
      throw new SwitchError((err as SwitchError).code ?? 'failed', msg);
    }

    // The switch: from here the new release serves; the old workers drain.
    const old = this.workers.filter((w) => !fresh.includes(w) && !w.exited);
    this.current = version;
    this.crashTimes = [];
    this.writeInfo();
    if (kind === 'rollback') setState(this.rel, version, 'permanent', `rolled back from ${from}`);
    else if (kind === 'upgrade') setState(this.rel, version, 'current');
    this.event(`${kind}: switched to ${version}, draining ${old.length} old worker(s)`);
    // The cutover: the new workers start accepting, and every old one stops at once and closes
    // each connection after its next response, so clients reconnect to the new release only.
    // They then drain (exit when their connections are gone).
    for (const w of fresh) w.startAccepting();
    for (const w of old) w.retire();
    // All at once: none of them accepts any more, so one at a time would only add their drains
    // up (each waits for its clients' idle keep-alive connections to time out). No drain delay:
    // the socket keeps answering through the new workers.
    if (old.length) progress(`draining ${old.length} old worker(s): ${old.map((w) => `${w.pid} (${w.version})`).join(', ')}`);
    await Promise.all(old.map((w) => w.stop(`${kind} to ${version}`, true).then(() => progress(`worker ${w.pid} drained`))));
    this.state = 'running';
    this.opts.notify?.('READY=1');
    if (kind === 'upgrade') this.startBake(version, from);
    const ms = Date.now() - started;
    this.metrics.switched(kind);
    this.event(`${kind} ${from} → ${version} done in ${ms} ms`);
    if (kind !== 'restart') this.prune();
    return { from, to: version, ms };
  }

  private startBake(version: string, previous: string): void {
    this.cancelBake();
    const timer = setTimeout(() => {
      this.bake = undefined;
      setState(this.rel, version, 'permanent', `baked for ${this.settings.bakePeriodMs} ms`);
      this.event(`release ${version} is permanent (no crash or readiness failure in the ${this.settings.bakePeriodMs} ms bake period)`);
      this.prune();
    }, this.settings.bakePeriodMs);
    timer.unref();
    this.bake = { version, previous, until: Date.now() + this.settings.bakePeriodMs, timer };
    this.event(`release ${version} is current; permanent after a ${this.settings.bakePeriodMs} ms bake period without crash or readiness failure`);
  }

  private cancelBake(): void {
    if (this.bake) clearTimeout(this.bake.timer);
    this.bake = undefined;
  }

  private async autoRollback(reason: string): Promise<void> {
    const bake = this.bake;
    if (!bake || this.state === 'stopping') return;
    this.cancelBake();
    this.event(`automatic rollback: ${bake.version} failed its bake period (${reason}); rolling back to ${bake.previous}`, 'error');
    setState(this.rel, bake.version, 'old', `automatic rollback: ${reason}`);
    for (let attempt = 0; attempt < 50 && this.state === 'upgrading'; attempt++) await sleep(100);
    try {
      await this.switchTo(bake.previous, 'rollback');
      this.event(`automatic rollback to ${bake.previous} done`, 'warn');
    } catch (err) {
      this.event(`automatic rollback to ${bake.previous} failed: ${(err as Error).message}`, 'error');
    }
  }

  /** Remove old releases beyond keepReleases, never the permanent, current or running ones. */
  prune(): void {
    const protect = [this.current, this.bake?.previous ?? '', ...this.workers.map((w) => w.version)];
    for (const v of pruneReleases(this.rel, this.settings.keepReleases, protect)) this.event(`pruned release ${v} (keep ${this.settings.keepReleases})`);
  }

  /** The release `rollback` goes to when no version is named: the newest other permanent/old release. */
  rollbackTarget(): string {
    const file = readReleases(this.rel);
    const perm = permanentVersion(this.rel);
    if (perm && perm !== this.current && existsSync(this.rel.appEntry(perm))) return perm;
    const others = file.releases
      .filter((r) => r.version !== this.current && (r.state === 'old' || r.state === 'permanent') && existsSync(this.rel.appEntry(r.version)))
      .sort((a, b) => b.changedAt.localeCompare(a.changedAt));
    if (!others.length) throw new SwitchError('missing', 'no older release on disk to roll back to');
    return others[0]!.version;
  }

  private writeInfo(): void {
    const info: SupervisorInfo = { pid: process.pid, name: this.settings.name, version: this.current, host: this.listen.host, port: this.listen.port, startedAt: new Date(this.startedAt).toISOString() };
    writeFileSync(this.rel.infoFile, JSON.stringify(info) + '\n');
  }

  // ── remote access ─────────────────────────────────────────────────────────────────────────

  pickWorker(): WorkerProcess {
    const w = this.readyWorkers(this.current)[0] ?? this.workers.find((x) => x.state === 'ready');
    if (!w) throw new Error('no ready worker to run it in');
    return w;
  }

  async rpc(expr: string, timeoutMs = 30_000): Promise<string | null> {
    const w = this.pickWorker();
    const res = await w.request((id) => ({ t: 'rpc', id, expr }), timeoutMs);
    if (res.t !== 'rpc-result') throw new Error('unexpected answer');
    if (!res.ok) throw new Error(res.error);
    return res.json;
  }

  async remote(cookie: string): Promise<{ path: string; pid: number | undefined }> {
    const w = this.pickWorker();
    const sock = path.join(this.rel.tmpDir, `remote-${w.pid}-${randomHex(4)}.sock`);
    const res = await w.request((id) => ({ t: 'remote', id, path: sock, cookie }), 5000);
    if (res.t !== 'remote-open' || !res.ok) throw new Error(`worker could not open a REPL: ${res.t === 'remote-open' ? res.error : 'unexpected answer'}`);
    return { path: sock, pid: w.pid };
  }

  setLogLevel(level: LogLevel): number {
    return this.setForWorkers(WorkerEnv.logLevel, level, { t: 'log-level', level });
  }

  setRequestLog(mode: RequestLogMode): number {
    return this.setForWorkers(WorkerEnv.requestLog, mode, { t: 'request-log', mode });
  }

  /** Every worker now (`msg`), and (remembered until the supervisor stops) every worker started later (`name` in its env). */
  private setForWorkers(name: string, value: string, msg: ToWorker): number {
    this.runtimeEnv[name] = value;
    for (const w of this.workers) w.send(msg);
    return this.workers.length;
  }

  status(): SupervisorStatus {
    return {
      name: this.settings.name,
      pid: process.pid,
      version: this.current,
      permanent: permanentVersion(this.rel),
      uptimeMs: Date.now() - this.startedAt,
      listen: { host: this.listen?.host ?? this.settings.host, port: this.listen?.port ?? this.settings.port, activated: this.listen?.activated ?? false },
      state: this.state,
      workers: this.workers.map((w) => w.status()),
      restarts: this.totalRestarts,
      bake: this.bake ? { version: this.bake.version, previous: this.bake.previous, until: new Date(this.bake.until).toISOString() } : null,
      events: this.events.slice(-20),
    };
  }

  // ── stopping ───────────────────────────────────────────────────────────────────────────────

  fatal(reason: string): void {
    if (this.exiting) return;
    const line = `${this.settings.name}: ${reason}`;
    process.stderr.write(line + '\n');
    try {
      writeFileSync(this.rel.lastExitFile, line + '\n');
    } catch {
      // tmp may be gone
    }
    this.event(`fatal: ${reason}`, 'error');
    void this.shutdown(1, 'fatal');
  }

  async shutdown(code: number, reason: string): Promise<void> {
    if (this.exiting) return;
    this.exiting = true;
    this.state = 'stopping';
    this.opts.notify?.('STOPPING=1');
    this.cancelBake();
    clearInterval(this.heartTimer);
    this.event(`stopping (${reason}): draining ${this.workers.length} worker(s), stop timeout ${this.settings.stopTimeoutMs} ms`);
    const stopping = Promise.all(this.workers.map((w) => w.stop(reason)));
    // Our fd no longer keeps the socket open: once the workers close theirs (after the drain
    // delay), new connections are refused instead of waiting in a backlog nobody will accept.
    // Under socket activation systemd holds it, and connections wait for the next start.
    this.listen?.close();
    await stopping;
    for (const f of [this.rel.infoFile, path.join(this.rel.tmpDir, `${this.settings.name}.pid`)]) rmSync(f, { force: true });
    this.event(`stopped`);
    this.log?.close();
    this.log = undefined;
    this.onExit(code);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** node:crypto loaded only when used: the supervisor does without it otherwise (sameBytes in control-server.ts). */
function randomHex(bytes: number): string {
  return process.getBuiltinModule('node:crypto').randomBytes(bytes).toString('hex');
}
