// Supervisor-side metrics: counters only the supervisor can know (worker crashes and restarts,
// upgrades, rollbacks, ready workers, the serving release), plus the aggregation of every worker's
// prom-client registry (collected over IPC as JSON, merged with AggregatorRegistry.aggregate).
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

type MetricJson = Parameters<typeof AggregatorRegistry.aggregate>[0][number];
import type { WorkerExit, WorkerProcess } from './worker.ts';

/** What the metrics need from the supervisor (kept structural: no import cycle). */
export interface MetricsSource {
  current: string;
  state: string;
  workers: WorkerProcess[];
  readyWorkers(version?: string): WorkerProcess[];
}

export class SupervisorMetrics {
  readonly registry = new Registry();
  private crashes: Counter<'version'>;
  private restarts: Counter;
  private switches: Counter<'kind'>;
  private upgrades: Counter;
  private rollbacks: Counter;
  crashCount = 0;

  constructor(
    private readonly sup: MetricsSource,
    name: string,
  ) {
    const r = [this.registry];
    this.crashes = new Counter({ name: 'slipway_worker_crashes_total', help: 'Workers that exited without being asked to (crash, uncaught error, heart kill)', labelNames: ['version'], registers: r });
    this.restarts = new Counter({ name: 'slipway_worker_restarts_total', help: 'Workers started to replace a crashed one', registers: r });
    this.switches = new Counter({ name: 'slipway_release_switches_total', help: 'Completed release switches by kind (upgrade, rollback, restart)', labelNames: ['kind'], registers: r });
    this.upgrades = new Counter({ name: 'slipway_upgrades_total', help: 'Completed upgrades', registers: r });
    this.rollbacks = new Counter({ name: 'slipway_rollbacks_total', help: 'Completed rollbacks (manual and automatic)', registers: r });
    for (const c of [this.restarts, this.upgrades, this.rollbacks]) c.inc(0);
    const src = this.sup;
    new Gauge({
      name: 'slipway_workers_ready',
      help: 'Workers of the serving release that pass readiness',
      registers: r,
      collect() {
        this.set(src.readyWorkers(src.current).length);
      },
    });
    new Gauge({
      name: 'slipway_workers',
      help: 'Worker processes by state',
      labelNames: ['state'],
      registers: r,
      collect() {
        this.reset();
        for (const s of ['booting', 'ready', 'draining']) this.set({ state: s }, src.workers.filter((w) => !w.exited && w.state === s).length);
      },
    });
    new Gauge({
      name: 'slipway_release_info',
      help: 'The serving release (value 1)',
      labelNames: ['name', 'version', 'node'],
      registers: r,
      collect() {
        this.reset();
        this.set({ name, version: src.current, node: process.version }, 1);
      },
    });
    const started = Date.now();
    new Gauge({
      name: 'slipway_supervisor_uptime_seconds',
      help: 'Seconds since the supervisor started',
      registers: r,
      collect() {
        this.set((Date.now() - started) / 1000);
      },
    });
  }

  /** Follow one worker: a replacement counts as a restart, an unexpected exit as a crash. */
  watch(w: WorkerProcess): void {
    if (w.restarts > 0) this.restarts.inc();
    w.on('exit', (exit: WorkerExit) => {
      if (exit.expected || this.sup.state === 'stopping') return;
      this.crashCount++;
      this.crashes.inc({ version: w.version });
    });
    w.on('metrics-request', (id: number) => {
      void this.text().then(
        (text) => w.send({ t: 'metrics-response', id, text }),
        (err: Error) => w.send({ t: 'metrics-response', id, text: `# metrics aggregation failed: ${err.message}\n` }),
      );
    });
  }

  switched(kind: string): void {
    this.switches.inc({ kind });
    if (kind === 'upgrade') this.upgrades.inc();
    if (kind === 'rollback') this.rollbacks.inc();
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
    const parts: Registry[] = [];
    if (got.length) parts.push(AggregatorRegistry.aggregate(got));
    parts.push(this.registry);
    return (await Registry.merge(parts).metrics()) + '';
  }
}
