// A bounded closed-loop load for the upgrade benchmarks: N keep-alive connections (one undici
// Client each, no pipelining), each sending one request after the previous answered, until a
// deadline or a request count. Every request is recorded (start, end, outcome, x-release), so a
// run can be cut into windows afterwards: steady state, switch window, after.
//
// After a failed request the slot opens a new connection and waits `retryDelayMs` first, as a
// client with a tiny backoff would; without it a refused port turns into a busy loop whose
// failure count only measures how fast the loop spins.
import { Client } from 'undici';
import { pct, sorted } from './stats.ts';

export type FailKind = 'refused' | 'reset' | 'timeout' | 'http5xx' | 'other';

export interface Sample {
  /** ms since the load started (performance.now() based) */
  start: number;
  end: number;
  ok: boolean;
  status?: number;
  kind?: FailKind;
  code?: string;
  release?: string;
}

export interface LoadOptions {
  port: number;
  connections: number;
  durationMs: number;
  maxRequests: number;
  path?: string;
  timeoutMs?: number;
  retryDelayMs?: number;
}

export interface RunningLoad {
  /** performance.now() at start: sample times are relative to it. */
  t0: number;
  /** Date.now() at start, to place wall-clock events (e.g. supervisor log lines) on the timeline. */
  wall0: number;
  /**
   * Stalls of the load generator's own event loop (a 10 ms timer that fired late by more than
   * 20 ms): while the client itself is stalled it records no responses, whatever the server does.
   */
  stalls: Array<{ at: number; ms: number }>;
  now(): number;
  stop(): void;
  done: Promise<Sample[]>;
}

export function classify(err: unknown): { kind: FailKind; code: string } {
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.cause?.code ?? e.code ?? e.message ?? 'error';
  if (code === 'ECONNREFUSED') return { kind: 'refused', code };
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return { kind: 'reset', code };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return { kind: 'timeout', code };
  return { kind: 'other', code };
}

export function startLoad(opts: LoadOptions): RunningLoad {
  const origin = `http://127.0.0.1:${opts.port}`;
  const t0 = performance.now();
  const wall0 = Date.now();
  const now = () => performance.now() - t0;
  const stalls: Array<{ at: number; ms: number }> = [];
  let lastTick = now();
  const ticker = setInterval(() => {
    const t = now();
    const late = t - lastTick - 10;
    if (late > 20) stalls.push({ at: lastTick + 10, ms: late });
    lastTick = t;
  }, 10);
  const samples: Sample[] = [];
  let sent = 0;
  let stopped = false;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const retryDelayMs = opts.retryDelayMs ?? 5;
  const newClient = () => new Client(origin, { keepAliveTimeout: 4000, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: 5000 } });
  const loop = async () => {
    let client = newClient();
    try {
      while (!stopped && now() < opts.durationMs && sent < opts.maxRequests) {
        sent++;
        const start = now();
        try {
          const r = await client.request({ method: 'GET', path: opts.path ?? '/hello' });
          await r.body.text();
          const release = r.headers['x-release'];
          const ok = r.statusCode < 500;
          samples.push({ start, end: now(), ok, status: r.statusCode, release: typeof release === 'string' ? release : undefined, ...(ok ? {} : { kind: 'http5xx' as const, code: String(r.statusCode) }) });
        } catch (err) {
          const { kind, code } = classify(err);
          samples.push({ start, end: now(), ok: false, kind, code });
          await client.destroy().catch(() => undefined);
          client = newClient();
          await new Promise((r) => setTimeout(r, retryDelayMs));
        }
      }
    } finally {
      await client.close().catch(() => undefined);
    }
  };
  const done = Promise.all(Array.from({ length: opts.connections }, loop)).then(() => {
    clearInterval(ticker);
    return samples;
  });
  return { t0, wall0, stalls, now, stop: () => void (stopped = true), done };
}

export interface WindowStats {
  requests: number;
  ok: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  rps: number;
}

/** Latency stats of the requests that started in [from, to). */
export function windowStats(samples: Sample[], from: number, to: number): WindowStats {
  const inWin = samples.filter((s) => s.start >= from && s.start < to);
  const okLat = sorted(inWin.filter((s) => s.ok).map((s) => s.end - s.start));
  const ok = okLat.length;
  return { requests: inWin.length, ok, failed: inWin.length - ok, p50: pct(okLat, 50), p99: pct(okLat, 99), max: okLat.length ? okLat[okLat.length - 1]! : NaN, rps: to > from ? (ok * 1000) / (to - from) : NaN };
}

/** Longest time with no successful response completing, within [from, to]. */
export function longestGap(samples: Sample[], from: number, to: number): { ms: number; at: number } {
  const ends = sorted(samples.filter((s) => s.ok && s.end >= from && s.end <= to).map((s) => s.end));
  let best = { ms: 0, at: from };
  let prev = from;
  for (const e of [...ends, to]) {
    if (e - prev > best.ms) best = { ms: e - prev, at: prev };
    prev = e;
  }
  return best;
}

export function failuresByKind(samples: Sample[]): Record<FailKind, number> & { codes: Record<string, number> } {
  const out = { refused: 0, reset: 0, timeout: 0, http5xx: 0, other: 0, codes: {} as Record<string, number> };
  for (const s of samples) {
    if (s.ok) continue;
    out[s.kind ?? 'other']++;
    const c = s.code ?? '?';
    out.codes[c] = (out.codes[c] ?? 0) + 1;
  }
  return out;
}

/** How much of [from, from + ms) the load generator itself was stalled. */
export function stallOverlap(stalls: Array<{ at: number; ms: number }>, from: number, ms: number): number {
  let n = 0;
  for (const s of stalls) n += Math.max(0, Math.min(from + ms, s.at + s.ms) - Math.max(from, s.at));
  return n;
}
