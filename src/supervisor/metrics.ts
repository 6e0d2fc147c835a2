// Supervisor-side metrics: counters only the supervisor can know (worker crashes and restarts,
// upgrades, rollbacks, ready workers, the serving release), plus the aggregation of every worker's
// prom-client registry (collected over IPC as JSON, merged with AggregatorRegistry.aggregate).
import type { AggregatorRegistry } from 'prom-client';
import type { WorkerExit, WorkerProcess } from './worker.ts';

type MetricJson = Parameters<typeof AggregatorRegistry.aggregate>[0][number];

/** What the metrics need from the supervisor (kept structural: no import cycle). */
export interface MetricsSource {
  current: string;
  state: string;
  workers: WorkerProcess[];
  readyWorkers(version?: string): WorkerProcess[];
}

// Plain counters on the hot side; prom-client is loaded only when /metrics is asked for, so the
// supervisor does not pay its memory and load time when nobody scrapes.
export class SupervisorMetrics {
  private crashesByVersion = new Map<string, number>();
  private restarts = 0;
  private switches = new Map<string, number>();
  private upgrades = 0;
  private rollbacks = 0;
  private readonly started = Date.now();
  crashCount = 0;

  constructor(
    private readonly sup: MetricsSource,
    private readonly name: string,
  ) {}

  /** Follow one worker: a replacement counts as a restart, an unexpected exit as a crash. */
  watch(w: WorkerProcess): void {
    if (w.restarts > 0) this.restarts++;
    w.on('exit', (exit: WorkerExit) => {
      if (exit.expected || this.sup.state === 'stopping') return;
      this.crashCount++;
      this.crashesByVersion.set(w.version, (this.crashesByVersion.get(w.version) ?? 0) + 1);
    });
    w.on('metrics-request', (id: number) => {
      void this.text().then(
        (text) => w.send({ t: 'metrics-response', id, text }),
        (err: Error) => w.send({ t: 'metrics-response', id, text: `# metrics aggregation failed: ${err.message}\n` }),
      );
    });
  }

  switched(kind: string): void {
    this.switches.set(kind, (this.switches.get(kind) ?? 0) + 1);
    if (kind === 'upgrade') this.upgrades++;
    if (kind === 'rollback') this.rollbacks++;
  }

  /** Prometheus text: every worker's metrics aggregated, then the supervisor's own. */
  async text(timeoutMs = 2000): Promise<string> {
    const live = this.sup.workers.filter((w) => !w.exited);
    const answers = await Promise.all(
      live.map((w) =>
        w.request((id) => ({ t: 'metrics-collect', id }), timeoutMs).then(
          (m) => (m.t === 'metrics-data' && m.json ? (JSON.parse(m.json) as MetricJson) : undefined),
          () => undefined,
        ),
      ),
    );
    const got = answers.filter((a): a is MetricJson => a !== undefined);
    const prom = await import('prom-client');
    const { AggregatorRegistry, Registry } = 'Registry' in prom ? prom : (prom as { default: typeof prom }).default;
    const parts: import('prom-client').Registry[] = [];
    if (got.length) parts.push(AggregatorRegistry.aggregate(got));
    parts.push(this.registry(prom));
    return (await Registry.merge(parts).metrics()) + '';
  }

  /** The supervisor's own metrics, as a fresh registry holding the current values. */
  private registry(prom: typeof import('prom-client')): import('prom-client').Registry {
    const { Counter, Gauge, Registry } = 'Registry' in prom ? prom : (prom as { default: typeof prom }).default;
    const registry = new Registry();
    const r = [registry];
    const crashes = new Counter({ name: 'slipway_worker_crashes_total', help: 'Workers that exited without being asked to (crash, uncaught error, heart kill)', labelNames: ['version'], registers: r });
    for (const [version, n] of this.crashesByVersion) crashes.inc({ version }, n);
    new Counter({ name: 'slipway_worker_restarts_total', help: 'Workers started to replace a crashed one', registers: r }).inc(this.restarts);
    const switches = new Counter({ name: 'slipway_release_switches_total', help: 'Completed release switches by kind (upgrade, rollback, restart)', labelNames: ['kind'], registers: r });
    for (const [kind, n] of this.switches) switches.inc({ kind }, n);
    new Counter({ name: 'slipway_upgrades_total', help: 'Completed upgrades', registers: r }).inc(this.upgrades);
    new Counter({ name: 'slipway_rollbacks_total', help: 'Completed rollbacks (manual and automatic)', registers: r }).inc(this.rollbacks);
    const src = this.sup;
    new Gauge({ name: 'slipway_workers_ready', help: 'Workers of the serving release that pass readiness', registers: r }).set(src.readyWorkers(src.current).length);
    const byState = new Gauge({ name: 'slipway_workers', help: 'Worker processes by state', labelNames: ['state'], registers: r });
    for (const s of ['booting', 'ready', 'draining']) byState.set({ state: s }, src.workers.filter((w) => !w.exited && w.state === s).length);
    new Gauge({ name: 'slipway_release_info', help: 'The serving release (value 1)', labelNames: ['name', 'version', 'node'], registers: r }).set({ name: this.name, version: src.current, node: process.version }, 1);
    new Gauge({ name: 'slipway_supervisor_uptime_seconds', help: 'Seconds since the supervisor started', registers: r }).set((Date.now() - this.started) / 1000);
    return registry;
  }
}
