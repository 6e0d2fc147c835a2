// SLO thresholds in k6 style: "p95<150ms", "availability>=99.9%", "recovery<2s", "rollback<2m".
// A threshold names a metric of the drill, an operator and a value with its unit.

export type Op = '<' | '<=' | '>' | '>=';
export type Unit = 'ms' | '%' | 'rps';

export interface Threshold {
  source: string;
  metric: string;
  op: Op;
  /** In the metric's unit: ms for durations and latencies, percent for availability, req/s for rps. */
  value: number;
  unit: Unit;
}

export const METRICS: Record<string, { unit: Unit; help: string }> = {
  p50: { unit: 'ms', help: 'median latency over the whole run' },
  p90: { unit: 'ms', help: '90th percentile latency' },
  p95: { unit: 'ms', help: '95th percentile latency' },
  p99: { unit: 'ms', help: '99th percentile latency' },
  max: { unit: 'ms', help: 'slowest request' },
  availability: { unit: '%', help: 'share of requests answered 2xx' },
  error_rate: { unit: '%', help: 'share of requests that failed (refused, reset, timeout, non-2xx)' },
  recovery: { unit: 'ms', help: 'worst time from an event until the error-free windows are back' },
  rollback: { unit: 'ms', help: 'duration of the rollback command' },
  upgrade: { unit: 'ms', help: 'duration of the upgrade command' },
  flag_off: { unit: 'ms', help: 'time from a kill switch (flags set NAME off) until no response shows the flagged behaviour' },
  rps: { unit: 'rps', help: 'mean throughput (requests per second)' },
};

/** The seed's SLO (p95 < 150 ms, availability >= 99.9 %, rollback < 2 min) plus Slipway's recovery default. */
export const DEFAULT_SLOS = ['p95<150ms', 'availability>=99.9%', 'rollback<2m', 'recovery<5s'];

/** Added to the defaults when the drill flips a feature flag: the kill switch applies on every worker within a second. */
export const FLAG_SLO = 'flag_off<1s';

export class SloError extends Error {}

const DURATION_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

export function parseSlo(src: string): Threshold {
  const m = /^\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z%/]*)\s*$/i.exec(src);
  if (!m) throw new SloError(`--slo: "${src}" is not METRIC<VALUE (e.g. "p95<150ms", "availability>=99.9%", "recovery<2s")`);
  const metric = m[1]!.toLowerCase();
  const def = METRICS[metric];
  if (!def) throw new SloError(`--slo: unknown metric "${m[1]}" in "${src}" (one of: ${Object.keys(METRICS).join(', ')})`);
  const num = Number(m[3]);
  const unit = m[4]!.toLowerCase();
  let value: number;
  if (def.unit === 'ms') {
    const f = DURATION_UNITS[unit || 'ms'];
    if (f === undefined) throw new SloError(`--slo: "${src}": ${metric} takes a duration (ms, s, m), not "${unit}"`);
    value = num * f;
  } else if (def.unit === '%') {
    if (unit !== '%' && unit !== '') throw new SloError(`--slo: "${src}": ${metric} takes a percentage (e.g. 99.9%)`);
    if (num > 100) throw new SloError(`--slo: "${src}": a percentage cannot exceed 100`);
    value = num;
  } else {
    if (unit !== '' && unit !== 'rps' && unit !== '/s') throw new SloError(`--slo: "${src}": ${metric} takes requests per second (e.g. rps>100)`);
    value = num;
  }
  return { source: src.trim(), metric, op: m[2] as Op, value, unit: def.unit };
}

/** Defaults, with any metric given on the command line replacing its default. */
export function resolveSlos(given: string[], defaults = DEFAULT_SLOS): Threshold[] {
  const user = given.map(parseSlo);
  const named = new Set(user.map((t) => t.metric));
  return [...defaults.map(parseSlo).filter((t) => !named.has(t.metric)), ...user];
}

export function holds(t: Threshold, actual: number): boolean {
  switch (t.op) {
    case '<':
      return actual < t.value;
    case '<=':
      return actual <= t.value;
    case '>':
      return actual > t.value;
    case '>=':
      return actual >= t.value;
  }
}

export function formatValue(unit: Unit, v: number | undefined): string {
  if (v === undefined) return 'n/a';
  if (!Number.isFinite(v)) return 'never';
  if (unit === '%') return `${v >= 99.99 && v < 100 ? v.toFixed(3) : v.toFixed(2)}%`;
  if (unit === 'rps') return `${v.toFixed(0)} req/s`;
  if (v >= 60_000) return `${(v / 60_000).toFixed(1)} min`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return `${v.toFixed(v < 10 ? 2 : 0)} ms`;
}
