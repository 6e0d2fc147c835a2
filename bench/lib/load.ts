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

const KINDS: FailKind[] = ['refused', 'reset', 'timeout', 'http5xx', 'other'];

/**
 * Samples kept in typed arrays while the load runs (no object per request), so that the load
 * generator's own garbage collection stays short; turned into Sample objects after the run.
 */
class SampleStore {
  private cap = 1 << 16;
  n = 0;
  start = new Float64Array(this.cap);
  end = new Float64Array(this.cap);
  /** 0 ok, 1 + index in KINDS otherwise */
  outcome = new Uint8Array(this.cap);
  status = new Uint16Array(this.cap);
  release = new Uint8Array(this.cap);
  releases: string[] = [''];
  codes = new Map<number, string>();

  push(start: number, end: number, outcome: number, status: number, release: string | undefined, code?: string): void {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.start[i] = start;
    this.end[i] = end;
    this.outcome[i] = outcome;
    this.status[i] = status;
    let r = 0;
    if (release !== undefined) {
      r = this.releases.indexOf(release);
      if (r < 0) r = this.releases.push(release) - 1;
    }
    this.release[i] = r;
    if (code !== undefined) this.codes.set(i, code);
  }

  private grow(): void {
    this.cap *= 2;
    const g = <T extends Float64Array | Uint8Array | Uint16Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(this.cap);
      b.set(a);
      return b;
    };
    this.start = g(this.start);
    this.end = g(this.end);
    this.outcome = g(this.outcome);
    this.status = g(this.status);
    this.release = g(this.release);
  }

  toSamples(): Sample[] {
    const out: Sample[] = new Array(this.n);
    for (let i = 0; i < this.n; i++) {
      const o = this.outcome[i]!;
      const s: Sample = { start: this.start[i]!, end: this.end[i]!, ok: o === 0 };
      if (this.status[i]) s.status = this.status[i];
      if (this.release[i]) s.release = this.releases[this.release[i]!];
      if (o !== 0) {
        s.kind = KINDS[o - 1];
        s.code = this.codes.get(i);
      }
      out[i] = s;
    }
    return out;
  }
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
  const store = new SampleStore();
  let sent = 0;
  let stopped = false;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const retryDelayMs = opts.retryDelayMs ?? 5;
  const reqOpts = { method: 'GET' as const, path: opts.path ?? '/hello' };
  const newClient = () => new Client(origin, { keepAliveTimeout: 4000, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: 5000 } });
  const loop = async () => {
    let client = newClient();
    try {
      while (!stopped && now() < opts.durationMs && sent < opts.maxRequests) {
        sent++;
        const start = now();
        try {
          const r = await client.request(reqOpts);
          await r.body.dump();
          const release = r.headers['x-release'];
          const ok = r.statusCode < 500;
          store.push(start, now(), ok ? 0 : 1 + KINDS.indexOf('http5xx'), r.statusCode, typeof release === 'string' ? release : undefined, ok ? undefined : String(r.statusCode));
        } catch (err) {
          const { kind, code } = classify(err);
          store.push(start, now(), 1 + KINDS.indexOf(kind), 0, undefined, code);
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
    return store.toSamples();
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

/**
 * Longest time with no successful response, not counting the time the load generator itself was
 * stalled (its own event loop late): the part of a gap that the server is answerable for.
 */
export function longestNetGap(samples: Sample[], from: number, to: number, stalls: Array<{ at: number; ms: number }>): { ms: number; at: number; rawMs: number } {
  const ends = sorted(samples.filter((s) => s.ok && s.end >= from && s.end <= to).map((s) => s.end));
  let best = { ms: 0, at: from, rawMs: 0 };
  let prev = from;
  for (const e of [...ends, to]) {
    if (e - prev > best.ms) {
      const net = e - prev - stallOverlap(stalls, prev, e - prev);
      if (net > best.ms) best = { ms: net, at: prev, rawMs: e - prev };
    }
    prev = e;
  }
  return best;
}
