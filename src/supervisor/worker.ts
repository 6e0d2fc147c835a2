// One worker process as the supervisor sees it: spawn, IPC, heartbeats, state, stop with a deadline.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { FatalKind, FromWorker, ToWorker, WorkerState, WorkerStatus } from '../protocol.ts';
import { WorkerEnv } from '../protocol.ts';
import { lineSplitter } from './logs.ts';

export interface WorkerSpec {
  id: number;
  version: string;
  node: string;
  envSh: string;
  appEntry: string;
  nodeFlags: string[];
  listenFd: number;
  env: NodeJS.ProcessEnv;
  stopTimeoutMs: number;
  drainDelayMs: number;
  heartIntervalMs: number;
  restarts: number;
  /** Ready, but not accepting until startAccepting() (workers of a release switch). */
  holdAccept?: boolean;
  onOutput: (text: string | Buffer) => void;
}

/**
 * argv that runs a release's app bundle the way every bin/APP command does: sh sources the
 * release's env.sh, then execs node (inherited fds, e.g. IPC on 3 and the socket on 4, survive).
 */
export function appArgv(envSh: string, node: string, nodeFlags: string[], appEntry: string): string[] {
  return ['-c', '. "$0" && exec "$@"', envSh, node, ...nodeFlags, appEntry];
}

/**
 * Node flags every worker gets before the release's own `nodeFlags` (a later flag wins, so
 * `nodeFlags: ["--memory-reducer"]` turns a default back on).
 *
 * --no-memory-reducer: a worker that boots and waits for its first request sees V8's memory
 * reducer run "Mark-Compact (reduce)" collections about 15 s after boot, which do not retain maps
 * that only inline caches still point to. Afterwards Node's own `process.nextTick` (its tick
 * object is a literal with symbol keys; several ticks per HTTP request) takes V8's runtime slow
 * path: GET /hello of the orders example then took 18 to 26 % more CPU per request for as long as
 * it was measured (bench/idle.ts, docs/reference.md). The price: an idle worker's heap is not
 * shrunk below the size it grew to.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  expected: boolean;
  fatal?: { kind: FatalKind; message: string };
}

/**
 * Events: 'state' (state), 'exit' (WorkerExit), 'cut' (requests).
 */
export class WorkerProcess extends EventEmitter {
  readonly id: number;
  readonly version: string;
  restarts: number;
  state: WorkerState = 'booting';
  failing: string | undefined;
  startedAt = Date.now();
  readyAt: number | undefined;
  lastBeat = Date.now();
  rss: number | undefined;
  heapUsed: number | undefined;
  inFlight: number | undefined;
  fatal: { kind: FatalKind; message: string } | undefined;
  /** Set once we asked it to stop (drain, kill by heart): its exit is not a crash. */
  expectedExit = false;
  exited = false;
  readonly exitPromise: Promise<WorkerExit>;
  private child: ChildProcess;
  private pending = new Map<number, (msg: FromWorker) => void>();
  private nextId = 1;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(private readonly spec: WorkerSpec) {
    super();
    this.id = spec.id;
    this.version = spec.version;
    this.restarts = spec.restarts;
    this.child = spawn('/bin/sh', appArgv(spec.envSh, spec.node, [...WORKER_NODE_FLAGS, ...spec.nodeFlags], spec.appEntry), {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', spec.listenFd],
      env: {
        ...spec.env,
        [WorkerEnv.mode]: 'worker',
        [WorkerEnv.listenFd]: '4',
        [WorkerEnv.workerId]: String(spec.id),
        [WorkerEnv.stopTimeoutMs]: String(spec.stopTimeoutMs),
        [WorkerEnv.drainDelayMs]: String(spec.drainDelayMs),
        [WorkerEnv.heartIntervalMs]: String(spec.heartIntervalMs),
        ...(spec.holdAccept ? { [WorkerEnv.holdAccept]: '1' } : {}),
        RELEASE_VSN: spec.version,
      },
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      const split = lineSplitter(spec.onOutput);
      stream.on('data', (c: Buffer) => split.push(c));
      stream.on('end', () => split.flush());
    }
    this.child.on('message', (msg: FromWorker) => this.onMessage(msg));
    this.child.on('error', () => undefined);
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = true;
        this.state = 'stopped';
        clearTimeout(this.killTimer);
        for (const [, cb] of this.pending) cb({ t: 'rpc-result', id: 0, ok: false, error: 'worker exited' });
        this.pending.clear();
        const exit: WorkerExit = { code, signal, expected: this.expectedExit, fatal: this.fatal };
        this.emit('exit', exit);
        resolve(exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private onMessage(msg: FromWorker): void {
    this.lastBeat = Date.now();
    switch (msg.t) {
      case 'heartbeat':
        this.rss = msg.rss;
        this.heapUsed = msg.heapUsed;
        this.inFlight = msg.inFlight;
        return;
      case 'state':
        if (this.state === 'draining' && msg.state === 'ready') return;
        if (msg.state === 'ready' && this.readyAt === undefined) this.readyAt = Date.now();
        this.failing = msg.failing;
        if (msg.state !== this.state || msg.failing) {
          this.state = msg.state;
          this.emit('state', msg.state, msg.failing);
        }
        return;
      case 'fatal':
        this.fatal = { kind: msg.kind, message: msg.message };
        return;
      case 'cut':
        this.emit('cut', msg.requests);
        return;
      case 'metrics-request':
        this.emit('metrics-request', msg.id);
        return;
      case 'log-full':
        this.emit('log-full', msg.bytes);
        return;
      case 'rpc-result':
      case 'remote-open':
      case 'metrics-data': {
        const cb = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        cb?.(msg);
        return;
      }
    }
  }

  send(msg: ToWorker): void {
    if (this.child.connected) this.child.send(msg);
  }

  /** Send a request that the worker answers with the same id. */
  request(build: (id: number) => ToWorker, timeoutMs: number): Promise<FromWorker> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`worker ${this.pid} is not connected`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${this.pid} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      this.child.send(build(id));
    });
  }

  /** Let a worker started with holdAccept take connections. */
  startAccepting(): void {
    if (!this.exited && this.child.connected) this.send({ t: 'start-accepting' });
  }

  /** Ask the worker to take no new connection and to close each open one after its next response; stop() ends it. */
  retire(): void {
    if (!this.exited && this.child.connected) this.send({ t: 'retire' });
  }

  /**
   * Ask the worker to drain and exit; SIGKILL it if it outlives the stop timeout (plus grace).
   * `keepListening`: others keep serving the socket, so the worker skips the drain delay.
   */
  stop(reason: string, keepListening = false): Promise<WorkerExit> {
    if (this.exited) return this.exitPromise;
    this.expectedExit = true;
    if (this.state !== 'draining') {
      this.state = 'draining';
      this.emit('state', 'draining');
    }
    if (this.child.connected) this.send({ t: 'drain', reason, keepListening });
    else this.signal('SIGTERM');
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.signal('SIGKILL'), this.spec.stopTimeoutMs + 2000);
    return this.exitPromise;
  }

  /** Kill without draining (heart, aborted upgrade of a worker that never became ready). */
  kill(expected: boolean): Promise<WorkerExit> {
    if (expected) this.expectedExit = true;
    this.signal('SIGKILL');
    return this.exitPromise;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exited || this.pid === undefined) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  status(): WorkerStatus {
    return {
      id: this.id,
      pid: this.pid,
      version: this.version,
      state: this.state,
      uptimeMs: Date.now() - this.startedAt,
      restarts: this.restarts,
      rss: this.rss,
      heapUsed: this.heapUsed,
      inFlight: this.inFlight,
    };
  }
}
