// Worker metrics (prom-client): request duration by route and status, in-flight requests, and
// Node's own (event-loop lag, heap, GC). Each worker keeps its registry; GET /metrics on any worker
// asks the supervisor, which collects every worker's registry as JSON, aggregates them
// (AggregatorRegistry semantics: sums, with averages/max where prom-client says so) and adds its
// own counters (restarts, crashes, upgrades, rollbacks, readiness, release info).
import { Gauge, Registry } from 'prom-client';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import gc from 'prom-client/lib/metrics/gc.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processCpuTotal from 'prom-client/lib/metrics/processCpuTotal.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';
import type { RequestObserver } from './context.ts';

/**
 * prom-client's default metrics (collectDefaultMetrics' list, in its order), without
 * nodejs_gc_duration_seconds unless asked for (SLIPWAY_METRICS_GC=on): that one has Node report
 * every garbage collection to a PerformanceObserver, which cost 2.1 % of a busy worker's CPU on
 * GET /hello (bench/builds-ab.ts, bench/hooks-results.md), the whole cost of the metrics there.
 */
const DEFAULT_METRICS = [processCpuTotal, processStartTime, osMemoryHeap, processOpenFileDescriptors, processMaxFileDescriptors, eventLoopLag, processResources, processHandles, processRequests, heapSizeAndUsed, heapSpacesSizeAndUsed, version];

export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Observe = { observe(v: number): void };

interface Series {
  labels: Record<string, string>;
  counts: Float64Array;
  sum: number;
  count: number;
  observe(v: number): void;
}

/**
 * A histogram with the hot path of a few array writes (prom-client's labelled observe hashes the
 * label object on every call). It registers like any prom-client metric and exports the same
 * JSON (so the supervisor's AggregatorRegistry sums it) and text.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private series = new Map<string, Series>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: string[],
    readonly buckets: number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for these label values (create once, keep it, call observe). */
  child(values: string[]): Observe {
    const key = values.join('\u0001');
    let s = this.series.get(key);
    if (!s) {
      const buckets = this.buckets;
      const counts = new Float64Array(buckets.length);
      const series: Series = {
        labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i] ?? ''])),
        counts,
        sum: 0,
        count: 0,
        observe(v: number) {
          series.sum += v;
          series.count++;
          for (let i = 0; i < buckets.length; i++) {
            if (v <= buckets[i]!) {
              counts[i]!++;
              return;
            }
          }
        },
      };
      s = series;
      this.series.set(key, s);
    }
    return s;
  }

  async get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le: this.buckets[i]! }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /**
   * Zero every series (prom-client's registry.resetMetrics()). The series stay: callers keep
   * them from child() (WorkerMetrics does), and a series dropped here would swallow their samples.
   */
  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

export class WorkerMetrics implements RequestObserver {
  readonly registry = new Registry();
  readonly duration: FastHistogram;
  readonly inFlight: Gauge;
  private inflight = 0;
  private byRoute = new Map<string, Map<string, Map<number, Observe>>>();
  private seriesCount = 0;
  private overflow: Observe | undefined;
  /** The series of the previous request and its labels (end()). */
  private lastSeries: Observe | undefined;
  private lastStatus = -1;
  private lastRoute = '';
  private lastMethod = '';

  constructor(opts: { gc?: boolean } = {}) {
    this.duration = new FastHistogram('http_request_duration_seconds', 'HTTP request duration in seconds, by method, route template and status code', ['method', 'route', 'status_code'], DURATION_BUCKETS, this.registry);
    const self = this;
    this.inFlight = new Gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests being served now (all workers)',
      registers: [this.registry],
      collect() {
        this.set(self.inflight);
      },
    });
    const config = { eventLoopMonitoringPrecision: 20 };
    for (const collect of opts.gc ? [...DEFAULT_METRICS, gc] : DEFAULT_METRICS) collect(this.registry, config);
  }

  begin(): void {
    this.inflight++;
  }

  /**
   * The hot path: three Map lookups keyed by the route and method strings (the same string objects
   * every time, so their hashes are cached) and the status number, then one observe. A joined
   * "method status route" key would be a new string to flatten and hash on every request.
   */
  end(method: string, route: string, status: number, seconds: number): void {
    this.inflight--;
    // The previous request's series first: requests in a row mostly share route, method and status.
    if (status !== this.lastStatus || route !== this.lastRoute || method !== this.lastMethod) {
      this.lastSeries = this.byRoute.get(route)?.get(method)?.get(status) ?? this.newSeries(method, route, status);
      this.lastStatus = status;
      this.lastRoute = route;
      this.lastMethod = method;
    }
    this.lastSeries!.observe(seconds);
  }

  private newSeries(method: string, route: string, status: number): Observe {
    // Past 2000 label sets (a route label gone wild) new ones share one overflow series.
    if (this.seriesCount >= 2000) return (this.overflow ??= this.duration.child(['OTHER', 'overflow', 'other']));
    this.seriesCount++;
    const child = this.duration.child([method, route, String(status)]);
    let byMethod = this.byRoute.get(route);
    if (byMethod === undefined) this.byRoute.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    byStatus.set(status, child);
    return child;
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
