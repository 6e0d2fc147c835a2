// Worker metrics (prom-client): request duration by route and status, in-flight requests, and
// Node's own (event-loop lag, heap, GC). Each worker keeps its registry; GET /metrics on any worker
// asks the supervisor, which collects every worker's registry as JSON, aggregates them
// (AggregatorRegistry semantics: sums, with averages/max where prom-client says so) and adds its
// own counters (restarts, crashes, upgrades, rollbacks, readiness, release info).
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestObserver } from './context.ts';

export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Observe = { observe(v: number): void };

export class WorkerMetrics implements RequestObserver {
  readonly registry = new Registry();
  readonly duration: Histogram<'method' | 'route' | 'status_code'>;
  readonly inFlight: Gauge;
  private inflight = 0;
  private children = new Map<string, Observe>();

  constructor() {
    this.duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds, by method, route template and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
    const self = this;
    this.inFlight = new Gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests being served now (all workers)',
      registers: [this.registry],
      collect() {
        this.set(self.inflight);
      },
    });
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
  }

  begin(): void {
    this.inflight++;
  }

  /** The hot path: one Map lookup and one observe. */
  end(method: string, route: string, status: number, seconds: number): void {
    this.inflight--;
    const key = method + ' ' + status + ' ' + route;
    let child = this.children.get(key);
    if (child === undefined) {
      child = this.duration.labels(method, route, String(status));
      if (this.children.size < 2000) this.children.set(key, child);
    }
    child.observe(seconds);
  }

  get inFlightNow(): number {
    return this.inflight;
  }

  /** Prometheus text of this worker alone (standalone mode, or when the supervisor is away). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** JSON for the supervisor's aggregation. */
  async json(): Promise<string> {
    return JSON.stringify(await this.registry.getMetricsAsJSON());
  }
}

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * GET /metrics in a worker: under a supervisor, ask it (over IPC) for the text aggregated over all
 * workers; alone (standalone, or no answer within 3 s) answer with this worker's registry.
 */
export class MetricsEndpoint {
  private pending = new Map<number, (text: string | Promise<string>) => void>();
  private seq = 0;
  constructor(
    readonly metrics: WorkerMetrics,
    private readonly ask: ((id: number) => boolean) | undefined,
  ) {}

  text(): Promise<string> {
    const id = ++this.seq;
    if (!this.ask) return this.metrics.text();
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      const t = setTimeout(() => this.pending.delete(id) && resolve(this.metrics.text()), 3000);
      t.unref();
      if (!this.ask!(id)) {
        clearTimeout(t);
        this.pending.delete(id);
        resolve(this.metrics.text());
      }
    });
  }

  /** The supervisor's answer to `ask(id)`. */
  answer(id: number, text: string): void {
    const fn = this.pending.get(id);
    this.pending.delete(id);
    fn?.(text);
  }

  handle(res: import('node:http').ServerResponse): void {
    this.text().then(
      (body) => {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
      (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics failed: ${err.message}\n`);
      },
    );
  }
}
