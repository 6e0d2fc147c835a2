// The drill's load generator: keep-alive HTTP/1.1 connections (http1.ts), closed-loop (N connections,
// one request after another) or open-loop (a fixed rate; latency is measured from the time a request
// was *scheduled*, so a stall shows up as latency instead of silently lowering the rate:
// coordinated omission), mixed routes with careful idempotent writes, an HDR histogram and a
// per-request timeline kept in typed arrays (so every 100 ms window gets its own percentiles).
// Bounded twice: it stops after maxRequests or maxDurationMs, whichever comes first.
import { randomUUID } from 'node:crypto';
import { Connection, ConnectionPool, type Sender } from './http1.ts';
import * as hdr from 'hdr-histogram-js';
import { setTimeout as sleep } from 'node:timers/promises';

export const OUTCOMES = ['ok', 'refused', 'reset', 'timeout', 'non-2xx', 'other'] as const;
export type Outcome = (typeof OUTCOMES)[number];
const O_OK = 0;

export const ROUTE_NAMES = ['hello', 'health', 'create', 'get', 'list'] as const;

export interface Route {
  /** "hello", "create", … or "GET /path" for a custom route. */
  name: string;
  method: 'GET' | 'POST';
  path: string;
  weight: number;
}

/** Parse "hello=3,create=2,get=3,list=1" or "/slow=1" / "GET /slow". One clear error on a bad spec. */
export function parseMix(spec: string): Route[] {
  const routes: Route[] = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:(GET)\s+)?([a-z-]+|\/[^\s=]*)\s*(?:=\s*(\d+(?:\.\d+)?))?$/i.exec(part);
    if (!m) throw new Error(`--mix: "${part}" is not NAME=WEIGHT or /PATH=WEIGHT (names: ${ROUTE_NAMES.join(', ')})`);
    const target = m[2]!;
    const weight = m[3] === undefined ? 1 : Number(m[3]);
    if (!(weight > 0)) throw new Error(`--mix: weight of "${target}" must be > 0`);
    if (target.startsWith('/')) {
      routes.push({ name: `GET ${target}`, method: 'GET', path: target, weight });
      continue;
    }
    const known: Record<string, Omit<Route, 'weight' | 'name'>> = {
      hello: { method: 'GET', path: '/hello' },
      health: { method: 'GET', path: '/health' },
      create: { method: 'POST', path: '/orders' },
      get: { method: 'GET', path: '/orders/:id' },
      list: { method: 'GET', path: '/orders?limit=10' },
    };
    const k = known[target.toLowerCase()];
    if (!k) throw new Error(`--mix: unknown route "${target}" (names: ${ROUTE_NAMES.join(', ')}, or /PATH)`);
    routes.push({ name: target.toLowerCase(), ...k, weight });
  }
  if (!routes.length) throw new Error('--mix: no routes');
  return routes;
}

export const DEFAULT_MIX = 'hello=3,get=3,create=2,list=1,health=1';

export interface LoadOptions {
  /** http://127.0.0.1:PORT (loopback only). */
  origin: string;
  mode: 'closed' | 'open';
  /** Keep-alive connections (closed loop: concurrent loops; open loop: pool size). */
  connections: number;
  /** Requests per second (open loop). */
  rate?: number;
  routes: Route[];
  maxRequests: number;
  maxDurationMs: number;
  timeoutMs?: number;
  /** Record this response header's value per response (Timeline.variant), e.g. "x-pricing" for a feature flag. */
  variantHeader?: string;
  /** Attempts per write (POST /orders with an Idempotency-Key), with exponential backoff. */
  writeAttempts?: number;
}

/** Per-request records in growable typed arrays (cheap on the hot path). */
export class Timeline {
  n = 0;
  /** Start (scheduled start in open loop), ms since the load's t0. */
  start = new Float64Array(1 << 14);
  latency = new Float64Array(1 << 14);
  outcome = new Uint8Array(1 << 14);
  release = new Int16Array(1 << 14);
  route = new Uint8Array(1 << 14);
  /** Index into variants of the recorded header's value (-1: no such header in the response). */
  variant = new Int16Array(1 << 14);
  releases: string[] = [];
  variants: string[] = [];
  private releaseIdx = new Map<string, number>();
  private variantIdx = new Map<string, number>();

  push(start: number, latency: number, outcome: number, release: string | undefined, route: number, variant?: string): void {
    if (this.n === this.start.length) this.grow();
    const i = this.n++;
    this.start[i] = start;
    this.latency[i] = latency;
    this.outcome[i] = outcome;
    this.route[i] = route;
    let r = -1;
    if (release !== undefined) {
      r = this.releaseIdx.get(release) ?? -1;
      if (r < 0) {
        r = this.releases.length;
        this.releases.push(release);
        this.releaseIdx.set(release, r);
      }
    }
    this.release[i] = r;
    let v = -1;
    if (variant !== undefined) {
      v = this.variantIdx.get(variant) ?? -1;
      if (v < 0) {
        v = this.variants.length;
        this.variants.push(variant);
        this.variantIdx.set(variant, v);
      }
    }
    this.variant[i] = v;
  }

  private grow(): void {
    const n = this.start.length * 2;
    const g = <T extends Float64Array | Uint8Array | Int16Array>(a: T, C: new (n: number) => T): T => {
      const b = new C(n);
      b.set(a);
      return b;
    };
    this.start = g(this.start, Float64Array);
    this.latency = g(this.latency, Float64Array);
    this.outcome = g(this.outcome, Uint8Array);
    this.release = g(this.release, Int16Array);
    this.route = g(this.route, Uint8Array);
    this.variant = g(this.variant, Int16Array);
  }
}

export interface OrdersLedger {
  /** Idempotency-Key → order id, for every write the server acknowledged (201). */
  acked: Map<string, string>;
  /** Keys whose every attempt failed: the order may or may not exist, but never twice. */
  unacked: Set<string>;
  attempts: number;
  retries: number;
}

export interface LoadResult {
  t0Epoch: number;
  durationMs: number;
  timeline: Timeline;
  histogram: hdr.Histogram;
  routes: string[];
  ledger: OrdersLedger;
  stoppedBy: 'stop' | 'max-requests' | 'max-duration';
}

export interface RunningLoad {
  /** ms since the load started (same clock as the timeline). */
  now(): number;
  t0Epoch: number;
  timeline: Timeline;
  stop(): void;
  done: Promise<LoadResult>;
}

export function classify(err: unknown): number {
  if ((err as { code?: string }).code === 'UND_ERR_DESTROYED') return 3;
  const e = err as { code?: string; name?: string; cause?: { code?: string }; message?: string };
  const code = e.cause?.code ?? e.code ?? '';
  if (code === 'ECONNREFUSED') return 1;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') return 2;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || e.name === 'TimeoutError' || e.name === 'AbortError' || code === 'ETIMEDOUT') return 3;
  return 5;
}


export function startLoad(opts: LoadOptions): RunningLoad {
  const url = new URL(opts.origin);
  assertLoopback(url.hostname);
  if (!(opts.maxRequests > 0) || !(opts.maxDurationMs > 0)) throw new Error('load: maxRequests and maxDurationMs must be > 0');
  if (opts.mode === 'open' && !(opts.rate && opts.rate > 0)) throw new Error('load: open loop needs a rate > 0');
  const timeoutMs = opts.timeoutMs ?? 5000;
  const writeAttempts = opts.writeAttempts ?? 6;
  const timeline = new Timeline();
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  const ledger: OrdersLedger = { acked: new Map(), unacked: new Set(), attempts: 0, retries: 0 };
  const ackedIds: string[] = [];
  const routes = opts.routes;
  const cum: number[] = [];
  let total = 0;
  for (const r of routes) cum.push((total += r.weight));
  const pick = (): number => {
    const x = Math.random() * total;
    for (let i = 0; i < cum.length; i++) if (x < cum[i]!) return i;
    return cum.length - 1;
  };
  const perf0 = performance.now();
  const t0Epoch = Date.now();
  const now = () => performance.now() - perf0;
  let sent = 0;
  let stopped = false;
  let stoppedBy: LoadResult['stoppedBy'] = 'stop';
  const deadline = opts.maxDurationMs;
  const canSend = () => {
    if (stopped) return false;
    if (sent >= opts.maxRequests) {
      stoppedBy = 'max-requests';
      stopped = true;
      return false;
    }
    if (now() >= deadline) {
      stoppedBy = 'max-duration';
      stopped = true;
      return false;
    }
    return true;
  };

  const record = (start: number, outcome: number, release: string | undefined, route: number, variant?: string) => {
    const lat = now() - start;
    timeline.push(start, lat, outcome, release, route, variant);
    histogram.recordValue(Math.max(1, Math.round(lat * 1000)));
  };

  /** One HTTP attempt (the hot path). Resolves with the outcome, the status and, when asked, the body. */
  const attempt = (d: Sender, start: number, routeIdx: number, method: 'GET' | 'POST', path: string, body?: string, headers = '', wantBody = false): Promise<{ outcome: number; status: number; text?: string }> => {
    sent++;
    return d.request(method, path, headers, body, wantBody).then(
      (r) => {
        const outcome = r.status >= 200 && r.status < 300 ? O_OK : 4;
        record(start, outcome, r.release, routeIdx, r.variant);
        return { outcome, status: r.status, text: r.body };
      },
      (err: unknown) => {
        const outcome = classify(err);
        record(start, outcome, undefined, routeIdx);
        return { outcome, status: 0 };
      },
    );
  };

  /** A careful client's write: one Idempotency-Key, retried with backoff on network errors and 5xx/429. */
  const write = async (d: Sender, start: number, routeIdx: number, retryOn: Sender): Promise<void> => {
    const key = randomUUID();
    const body = JSON.stringify({ item: `drill-${key.slice(0, 8)}`, quantity: 1 + (sent % 5) });
    const headers = `Content-Type: application/json\r\nIdempotency-Key: ${key}\r\n`;
    ledger.attempts++;
    let r = await attempt(d, start, routeIdx, 'POST', '/orders', body, headers, true);
    for (let n = 1; n < writeAttempts; n++) {
      if (r.outcome === O_OK || (r.status >= 400 && r.status < 500 && r.status !== 429)) break;
      await sleep(Math.min(1000, 50 * 2 ** (n - 1)) * (0.5 + Math.random()));
      // The retry is a separate request, bounded like any other (but a write in flight is finished
      // if the count still allows it, so that as few orders as possible stay ambiguous).
      if (sent >= opts.maxRequests || now() >= deadline + 3000) break;
      ledger.retries++;
      r = await attempt(retryOn, now(), routeIdx, 'POST', '/orders', body, headers, true);
    }
    if (r.outcome === O_OK && r.text) {
      try {
        const id = (JSON.parse(r.text) as { id?: string }).id;
        if (id) {
          ledger.acked.set(key, id);
          ackedIds.push(id);
          return;
        }
      } catch {
        // fall through
      }
    }
    ledger.unacked.add(key);
  };

  const issue = (d: Sender, start: number): Promise<unknown> => {
    const idx = pick();
    const route = routes[idx]!;
    if (route.method === 'POST') return write(d, start, idx, d);
    let path = route.path;
    if (route.name === 'get') {
      if (!ackedIds.length) path = '/hello';
      else path = `/orders/${ackedIds[(Math.random() * ackedIds.length) | 0]}`;
    }
    return attempt(d, start, idx, 'GET', path);
  };

  const senders: Sender[] = [];
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 80);
  const variantHeader = opts.variantHeader?.toLowerCase();
  let done: Promise<unknown>;
  if (opts.mode === 'closed') {
    const loop = async () => {
      const client = new Connection(host, port, timeoutMs, variantHeader);
      senders.push(client);
      while (canSend()) {
        const before = timeline.n;
        await issue(client, now());
        // After a connection error, pause briefly as a real client would, instead of spinning.
        if (timeline.n > before && timeline.outcome[timeline.n - 1] !== O_OK && timeline.outcome[timeline.n - 1] !== 4) await sleep(5);
      }
    };
    done = Promise.all(Array.from({ length: opts.connections }, loop));
  } else {
    const pool = new ConnectionPool(host, port, opts.connections, timeoutMs, variantHeader);
    senders.push(pool);
    const interval = 1000 / opts.rate!;
    const inflight = new Set<Promise<unknown>>();
    done = (async () => {
      let i = 0;
      while (canSend()) {
        const due = Math.floor(now() / interval) + 1;
        while (i < due && canSend()) {
          // Coordinated omission: when every connection is taken (the server is holding them), the
          // wait counts, so latency runs from the scheduled time. With a connection free, the
          // request goes out now and only our own timer's lateness would be added: not counted.
          const p = issue(pool, inflight.size >= opts.connections ? i * interval : Math.max(i * interval, now()));
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
          i++;
        }
        // Sleep until the next scheduled start (timers fire late, never early; a late start is
        // counted in the latency, which is the point of measuring from the schedule).
        await sleep(Math.max(1, Math.floor(i * interval - now())));
      }
      // Requests still queued or unanswered a timeout after the end are given up (recorded as timeouts).
      const grace = sleep(timeoutMs + 1000).then(() => 'late');
      if ((await Promise.race([Promise.all(inflight), grace])) === 'late') {
        pool.close();
        await Promise.all(inflight);
      }
    })();
  }
  const finished = done.then(async () => {
    const durationMs = now();
    for (const d of senders) d.close();
    return { t0Epoch, durationMs, timeline, histogram, routes: routes.map((r) => r.name), ledger, stoppedBy };
  });
  return {
    now,
    t0Epoch,
    timeline,
    stop: () => {
      stopped = true;
    },
    done: finished,
  };
}

/** Drills send traffic to this machine only. */
export function assertLoopback(host: string): void {
  const h = host.replace(/^\[|\]$/g, '');
  if (!(h === '127.0.0.1' || h === '::1' || h === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(h))) {
    throw new Error(`refusing to send load to ${host}: drills target loopback only (127.0.0.1 or ::1)`);
  }
}
