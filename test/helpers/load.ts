// A small bounded closed-loop load for tests: N keep-alive connections (undici Clients), each
// sending one request after another until a request count or a deadline is reached.
import { Client } from 'undici';

export interface LoadResult {
  retried: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  statuses: Record<string, number>;
  releases: Record<string, number>;
  /** [time, release] whenever the serving release seen by responses changed. */
  switches: Array<[number, string]>;
  samples: Array<{ at: number; ms: number; ok: boolean; release?: string; error?: string }>;
}

export interface LoadOptions {
  origin: string;
  connections?: number;
  path?: string | (() => { method?: 'GET' | 'POST'; path: string; body?: string; headers?: Record<string, string> });
  maxRequests?: number;
  durationMs: number;
  /** A new connection per request (Connection: close), to observe refused connections. */
  fresh?: boolean;
  timeoutMs?: number;
  /**
   * Retry a request once when its connection dies before any response byte (reset, closed), as
   * careful HTTP clients do for idempotent requests (RFC 9110 9.2.2). Counted in `retried`.
   */
  retryIdempotent?: boolean;
}

export interface RunningLoad {
  stop(): void;
  done: Promise<LoadResult>;
  stats(): LoadResult;
}

export function startLoad(opts: LoadOptions): RunningLoad {
  const res: LoadResult = { retried: 0, ok: 0, failed: 0, errors: {}, statuses: {}, releases: {}, switches: [], samples: [] };
  const deadline = Date.now() + opts.durationMs;
  const max = opts.maxRequests ?? 1_000_000;
  let sent = 0;
  let stopped = false;
  let lastRelease: string | undefined;
  const loop = async () => {
    let client = new Client(opts.origin, { keepAliveTimeout: 4000, pipelining: 1, headersTimeout: opts.timeoutMs ?? 10_000, bodyTimeout: opts.timeoutMs ?? 10_000, connect: { timeout: 5000 } });
    try {
      while (!stopped && Date.now() < deadline && sent < max) {
        sent++;
        const spec = typeof opts.path === 'function' ? opts.path() : { method: 'GET' as const, path: opts.path ?? '/hello' };
        const t0 = performance.now();
        const at = Date.now();
        const send = () => client.request({
            method: spec.method ?? 'GET',
            path: spec.path,
            body: spec.body,
            headers: { ...(spec.body ? { 'content-type': 'application/json' } : {}), ...spec.headers, ...(opts.fresh ? { connection: 'close' } : {}) },
          });
        try {
          let r;
          try {
            r = await send();
          } catch (err) {
            const code = (err as { code?: string }).code ?? '';
            const retryable = opts.retryIdempotent && (spec.method ?? 'GET') === 'GET' && ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED'].includes(code);
            if (!retryable) throw err;
            res.retried++;
            await client.close().catch(() => undefined);
            client = new Client(opts.origin, { keepAliveTimeout: 4000, pipelining: 1 });
            r = await send();
          }
          await r.body.text();
          const release = r.headers['x-release'] as string | undefined;
          const good = r.statusCode < 400;
          res.statuses[r.statusCode] = (res.statuses[r.statusCode] ?? 0) + 1;
          if (good) res.ok++;
          else res.failed++;
          if (release) {
            res.releases[release] = (res.releases[release] ?? 0) + 1;
            if (release !== lastRelease) {
              res.switches.push([at, release]);
              lastRelease = release;
            }
          }
          res.samples.push({ at, ms: performance.now() - t0, ok: good, release });
        } catch (err) {
          const e = err as { code?: string; cause?: { code?: string }; message?: string };
          const kind = e.cause?.code ?? e.code ?? e.message ?? 'error';
          res.failed++;
          res.errors[kind] = (res.errors[kind] ?? 0) + 1;
          res.samples.push({ at, ms: performance.now() - t0, ok: false, error: kind });
          await client.close().catch(() => undefined);
          client = new Client(opts.origin, { keepAliveTimeout: 4000, pipelining: 1 });
        }
        if (opts.fresh) {
          await client.close().catch(() => undefined);
          client = new Client(opts.origin, { keepAliveTimeout: 4000, pipelining: 1 });
        }
      }
    } finally {
      await client.close().catch(() => undefined);
    }
  };
  const done = Promise.all(Array.from({ length: opts.connections ?? 8 }, loop)).then(() => res);
  return { stop: () => (stopped = true), done, stats: () => res };
}
