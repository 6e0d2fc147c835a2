// /health (liveness: the process answers) and /ready (readiness: every registered check passes,
// and the worker is neither booting nor draining). Checks run on an interval in the background so
// that /ready is cheap for load balancers and flips within one interval when a dependency dies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WorkerState } from '../protocol.ts';

export interface ReadinessCheck {
  name: string;
  run: () => Promise<unknown> | unknown;
  /** Per-check timeout; a check that takes longer fails. Default 2000 ms. */
  timeoutMs?: number;
}

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface ReadyReport {
  ready: boolean;
  state: WorkerState;
  checks: Record<string, CheckResult>;
}

type Listener = (report: ReadyReport) => void;

export class Health {
  private checks: ReadinessCheck[] = [];
  private results: Record<string, CheckResult> = {};
  private lifecycle: WorkerState = 'booting';
  private timer: NodeJS.Timeout | undefined;
  private listeners: Listener[] = [];
  private lastKey = '';
  readonly startedAt = Date.now();

  constructor(readonly options: { intervalMs?: number; info?: Record<string, unknown> } = {}) {}

  /** Register a readiness check, e.g. a database `SELECT 1`. */
  check(name: string, run: ReadinessCheck['run'], timeoutMs?: number): this {
    this.checks.push({ name, run, timeoutMs });
    return this;
  }

  get state(): WorkerState {
    return this.lifecycle;
  }

  setState(state: WorkerState): void {
    this.lifecycle = state;
    if (state !== 'ready') this.stopLoop();
    this.emit();
  }

  /** Liveness: true while the process can answer at all. */
  ok(): boolean {
    return true;
  }

  /** Run every check once, with its timeout, and keep the results. */
  async runChecks(): Promise<Record<string, CheckResult>> {
    const results = await Promise.all(this.checks.map((c) => runOne(c)));
    this.results = Object.fromEntries(this.checks.map((c, i) => [c.name, results[i]!]));
    this.emit();
    return this.results;
  }

  checksPass(): boolean {
    return this.checks.every((c) => this.results[c.name]?.ok === true);
  }

  failing(): string | undefined {
    const bad = this.checks.find((c) => this.results[c.name]?.ok !== true);
    if (!bad) return undefined;
    return `${bad.name}: ${this.results[bad.name]?.error ?? 'not run yet'}`;
  }

  report(): ReadyReport {
    return {
      ready: this.lifecycle === 'ready' && this.checksPass(),
      state: this.lifecycle,
      checks: { ...this.results },
    };
  }

  /** Start re-running the checks on an interval (the worker does this once it is ready). */
  startLoop(): void {
    this.stopLoop();
    const every = this.options.intervalMs ?? 1000;
    const tick = async () => {
      await this.runChecks().catch(() => undefined);
      if (this.lifecycle === 'ready') this.timer = setTimeout(tick, every).unref();
    };
    this.timer = setTimeout(tick, every).unref();
  }

  stopLoop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Called whenever readiness may have changed; the worker forwards changes to the supervisor. */
  onChange(fn: Listener): void {
    this.listeners.push(fn);
  }

  private emit(): void {
    const report = this.report();
    const key = `${report.ready}|${report.state}|${this.failing() ?? ''}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    for (const fn of this.listeners) fn(report);
  }

  /**
   * Plain `http.Server` integration: answers /health and /ready and returns true,
   * or returns false so the caller handles the request itself.
   */
  handle(req: IncomingMessage, res: ServerResponse, paths = { health: '/health', ready: '/ready' }): boolean {
    const path = (req.url ?? '/').split('?')[0];
    if (path === paths.health) {
      send(res, 200, this.healthBody());
      return true;
    }
    if (path === paths.ready) {
      const r = this.report();
      send(res, r.ready ? 200 : 503, this.readyBody(r));
      return true;
    }
    return false;
  }

  healthBody(): Record<string, unknown> {
    return { ok: true, uptime_s: Math.round((Date.now() - this.startedAt) / 1000), pid: process.pid, ...this.options.info };
  }

  readyBody(r = this.report()): Record<string, unknown> {
    const body: Record<string, unknown> = { ready: r.ready, state: r.state, checks: r.checks };
    if (!r.ready) body.failing = r.state !== 'ready' ? `worker is ${r.state}` : this.failing();
    return body;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function runOne(check: ReadinessCheck): Promise<CheckResult> {
  const started = performance.now();
  const timeoutMs = check.timeoutMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(() => check.run()),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    return { ok: false, ms: Math.round(performance.now() - started), error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Fastify plugin: `app.register(healthPlugin(health))` adds GET /health and GET /ready.
 * Typed structurally so the runtime does not depend on fastify.
 */
export function healthPlugin(health: Health, paths = { health: '/health', ready: '/ready' }) {
  type Reply = { code(n: number): Reply; header(k: string, v: string): Reply; send(b: unknown): unknown };
  type Instance = { get(path: string, handler: (req: unknown, reply: Reply) => unknown): unknown };
  const plugin = async (app: Instance) => {
    app.get(paths.health, (_req, reply) => reply.header('cache-control', 'no-store').send(health.healthBody()));
    app.get(paths.ready, (_req, reply) => {
      const r = health.report();
      return reply.code(r.ready ? 200 : 503).header('cache-control', 'no-store').send(health.readyBody(r));
    });
  };
  // Register at the root scope, like fastify-plugin does.
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
