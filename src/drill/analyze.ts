// From a load's per-request timeline to 100 ms windows (own percentiles, errors by kind, serving
// release), whole-run metrics, release switches and per-event recovery.
import type { LoadResult } from './loadgen.ts';
import { OUTCOMES } from './loadgen.ts';

export const WINDOW_MS = 100;

export interface Window {
  /** Window start, ms since the load's t0. */
  t: number;
  count: number;
  ok: number;
  errors: Record<string, number>;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  /** Responses per serving release. */
  releases: Record<string, number>;
  /** The release that served most responses, or null. */
  release: string | null;
  /** Responses per value of the recorded flag header (e.g. x-pricing: new / classic), when the load records one. */
  variants?: Record<string, number>;
  /** The most frequent flag header value, or null. */
  variant?: string | null;
}

export interface Summary {
  requests: number;
  ok: number;
  errors: Record<string, number>;
  availability: number;
  errorRate: number;
  rps: number;
  durationMs: number;
  latency: { p50: number; p90: number; p95: number; p99: number; max: number; mean: number };
  releases: Record<string, number>;
  byRoute: Record<string, { count: number; ok: number }>;
}

export interface Switch {
  at: number;
  from: string | null;
  to: string;
}

function pct(sorted: Float64Array, p: number): number {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function windows(load: LoadResult): Window[] {
  const tl = load.timeline;
  const n = Math.max(1, Math.ceil(load.durationMs / WINDOW_MS));
  const lat: number[][] = Array.from({ length: n }, () => []);
  const out: Window[] = Array.from({ length: n }, (_, i) => ({ t: i * WINDOW_MS, count: 0, ok: 0, errors: {}, p50: null, p95: null, p99: null, max: null, releases: {}, release: null }));
  for (let i = 0; i < tl.n; i++) {
    // A request belongs to the window in which it completed (what a client experiences then).
    const w = Math.min(n - 1, Math.floor((tl.start[i]! + tl.latency[i]!) / WINDOW_MS));
    const win = out[w]!;
    win.count++;
    const o = tl.outcome[i]!;
    if (o === 0) win.ok++;
    else win.errors[OUTCOMES[o]!] = (win.errors[OUTCOMES[o]!] ?? 0) + 1;
    lat[w]!.push(tl.latency[i]!);
    const r = tl.release[i]!;
    if (r >= 0) win.releases[tl.releases[r]!] = (win.releases[tl.releases[r]!] ?? 0) + 1;
    const v = tl.variant[i]!;
    if (v >= 0) {
      const vs = (win.variants ??= {});
      vs[tl.variants[v]!] = (vs[tl.variants[v]!] ?? 0) + 1;
    }
  }
  for (let w = 0; w < n; w++) {
    const win = out[w]!;
    if (lat[w]!.length) {
      const s = Float64Array.from(lat[w]!).sort();
      win.p50 = round(pct(s, 50));
      win.p95 = round(pct(s, 95));
      win.p99 = round(pct(s, 99));
      win.max = round(s[s.length - 1]!);
    }
    let best: string | null = null;
    for (const [rel, c] of Object.entries(win.releases)) if (best === null || c > win.releases[best]!) best = rel;
    win.release = best;
    if (tl.variants.length) {
      win.variants ??= {};
      win.variant = dominantKey(win.variants);
    }
  }
  return out;
}

export function summarize(load: LoadResult): Summary {
  const tl = load.timeline;
  const errors: Record<string, number> = {};
  const releases: Record<string, number> = {};
  const byRoute: Record<string, { count: number; ok: number }> = {};
  let ok = 0;
  for (let i = 0; i < tl.n; i++) {
    const o = tl.outcome[i]!;
    const route = load.routes[tl.route[i]!] ?? '?';
    const br = (byRoute[route] ??= { count: 0, ok: 0 });
    br.count++;
    if (o === 0) {
      ok++;
      br.ok++;
    } else errors[OUTCOMES[o]!] = (errors[OUTCOMES[o]!] ?? 0) + 1;
    const r = tl.release[i]!;
    if (r >= 0) releases[tl.releases[r]!] = (releases[tl.releases[r]!] ?? 0) + 1;
  }
  const h = load.histogram;
  const ms = (us: number) => round(us / 1000);
  const requests = tl.n;
  return {
    requests,
    ok,
    errors,
    availability: requests ? (ok / requests) * 100 : 0,
    errorRate: requests ? ((requests - ok) / requests) * 100 : 0,
    rps: load.durationMs > 0 ? requests / (load.durationMs / 1000) : 0,
    durationMs: Math.round(load.durationMs),
    latency: {
      p50: ms(h.getValueAtPercentile(50)),
      p90: ms(h.getValueAtPercentile(90)),
      p95: ms(h.getValueAtPercentile(95)),
      p99: ms(h.getValueAtPercentile(99)),
      max: ms(h.maxValue),
      mean: ms(h.mean),
    },
    releases,
    byRoute,
  };
}

/**
 * Where the serving release changes for good. During an upgrade old and new workers both answer
 * for a while (the old ones drain), so a release counts as switched to once it answers at least
 * 90 % of the responses for `stable` windows in a row; the switch is placed where that release
 * began answering without interruption (the start of the overlap).
 */
export function switches(ws: Window[], stable = 5, share = 0.9, of: (w: Window) => Record<string, number> = (w) => w.releases): Switch[] {
  const out: Switch[] = [];
  let cur: string | null = null;
  const seq = ws.map((w) => ({ t: w.t, counts: of(w) ?? {} })).map((w) => ({ ...w, top: dominantKey(w.counts) })).filter((w) => w.top !== null);
  const dominant = (w: (typeof seq)[number], rel: string) => {
    let total = 0;
    for (const n of Object.values(w.counts)) total += n;
    return total > 0 && (w.counts[rel] ?? 0) / total >= share;
  };
  for (let i = 0; i < seq.length; i++) {
    const rel = seq[i]!.top!;
    if (rel === cur || !dominant(seq[i]!, rel)) continue;
    const run = seq.slice(i, i + stable);
    if (cur !== null && (run.length < Math.min(stable, seq.length - i) || !run.every((w) => dominant(w, rel)))) continue;
    let at = seq[i]!.t;
    for (let j = i - 1; j >= 0 && cur !== null && (seq[j]!.counts[rel] ?? 0) > 0; j--) at = seq[j]!.t;
    out.push({ at, from: cur, to: rel });
    cur = rel;
  }
  return out;
}

/**
 * Recovery after an event at `at` (ms), looking until `until`: 0 when no window in between had an
 * error; else the end of the last window with errors minus `at`; Infinity when errors go on into
 * the last second before `until` (not recovered).
 */
export function recovery(ws: Window[], at: number, until: number): number {
  let lastErr = -1;
  for (const w of ws) {
    if (w.t + WINDOW_MS <= at || w.t >= until) continue;
    if (w.count > w.ok) lastErr = w.t + WINDOW_MS;
  }
  if (lastErr < 0) return 0;
  if (until - lastErr < 1000) return Infinity;
  return Math.max(0, lastErr - at);
}

/** Which releases answered requests that completed in [from, to). */
export function releasesBetween(load: LoadResult, from: number, to: number): Record<string, number> {
  const tl = load.timeline;
  const out: Record<string, number> = {};
  for (let i = 0; i < tl.n; i++) {
    const end = tl.start[i]! + tl.latency[i]!;
    if (end < from || end >= to) continue;
    const r = tl.release[i]!;
    if (r >= 0) out[tl.releases[r]!] = (out[tl.releases[r]!] ?? 0) + 1;
  }
  return out;
}

/** Flag header switches (e.g. x-pricing new → classic), like release switches. */
export function variantSwitches(ws: Window[], stable = 5, share = 0.9): Switch[] {
  return switches(ws, stable, share, (w) => w.variants ?? {});
}

function dominantKey(counts: Record<string, number>): string | null {
  let best: string | null = null;
  for (const [k, c] of Object.entries(counts)) if (best === null || c > counts[best]!) best = k;
  return best;
}

/** Flag header values of the responses that completed in [from, to). */
export function variantsBetween(load: LoadResult, from: number, to: number): Record<string, number> {
  const tl = load.timeline;
  const out: Record<string, number> = {};
  for (let i = 0; i < tl.n; i++) {
    const end = tl.start[i]! + tl.latency[i]!;
    if (end < from || end >= to) continue;
    const v = tl.variant[i]!;
    if (v >= 0) out[tl.variants[v]!] = (out[tl.variants[v]!] ?? 0) + 1;
  }
  return out;
}

/** Completion time (ms since t0) of the last response at or after `from` whose header value is one of `values`; undefined if none. */
export function lastVariantAt(load: LoadResult, values: Set<string>, from: number): number | undefined {
  const tl = load.timeline;
  let last: number | undefined;
  for (let i = 0; i < tl.n; i++) {
    const end = tl.start[i]! + tl.latency[i]!;
    const v = tl.variant[i]!;
    if (end < from || v < 0 || !values.has(tl.variants[v]!)) continue;
    if (last === undefined || end > last) last = end;
  }
  return last;
}

export function round(x: number): number {
  return Math.round(x * 100) / 100;
}
