// Per-request context carried through async work (AsyncLocalStorage): request id, trace ids,
// route, and the metadata `log.metadata()` adds. `instrumentServer` wraps an http.Server so that
// every request runs inside its context, gets one log line, one histogram sample and (when OTel
// export is on) one server span. The hot path is a handful of property writes and one log call.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface RequestStore {
  id: string;
  traceId: string;
  spanId: string;
  /** Sampled flag of the incoming traceparent ("01" / "00"). */
  flags: string;
  /** The route template (e.g. "/orders/:id") once the framework knows it. */
  route: string;
  /** Fields added to every log line of this request (req_id, trace_id, span_id, metadata). */
  fields: Record<string, unknown>;
  /** Set by log.metadata() once it added fields (the request line then serializes them all). */
  extended?: boolean;
}

export const requestStorage = new AsyncLocalStorage<RequestStore>();

/** Where requestContextPlugin also leaves the route on the raw request (works without the context). */
const ROUTE = Symbol.for('slipway.route');
/** The request's store on the raw request, for requestContextPlugin (works without the context). */
const STORE = Symbol.for('slipway.store');
/**
 * Set once requestContextPlugin is registered: it then puts x-request-id on the framework's reply
 * (one more entry in the headers Fastify writes at once), which saves the worker a res.setHeader
 * per request (Node then merges headers one by one in writeHead: a few µs).
 */
let headerByPlugin = false;

export function currentRequest(): RequestStore | undefined {
  return requestStorage.getStore();
}

/** The current request id (Fastify: `genReqId: () => currentRequestId()` so both agree). */
export function currentRequestId(): string {
  return requestStorage.getStore()?.id ?? nextRequestId();
}

/** Tell the instrumentation which route template served the current request. */
export function setRoute(route: string): void {
  const s = requestStorage.getStore();
  if (s) s.route = route;
}

/** W3C trace context headers for an outgoing call made while serving the current request. */
export function traceHeaders(): Record<string, string> {
  const s = requestStorage.getStore();
  return s ? { traceparent: `00-${s.traceId}-${s.spanId}-${s.flags}` } : {};
}

// ── ids: random bytes from a pool (one randomFillSync per 256 ids), hex-encoded ──────────────
let pool = Buffer.alloc(4096);
let poolAt = pool.length;
function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const s = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}
export const newTraceId = (): string => randomHex(16);
export const newSpanId = (): string => randomHex(8);

const idPrefix = `${process.pid.toString(36)}-`;
let counter = 0;
function nextRequestId(): string {
  return idPrefix + (++counter).toString(36);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** Parse a W3C traceparent header; undefined when absent or invalid (all-zero ids are invalid). */
export function parseTraceparent(h: unknown): { traceId: string; parentId: string; flags: string } | undefined {
  if (typeof h !== 'string' || h.length !== 55) return undefined;
  const m = TRACEPARENT.exec(h);
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined;
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}

/** What the instrumentation needs from tracing (tracing.ts) when OTel export is on. */
export interface RequestTracer {
  /** Start a server span; returns its ids, a runner that activates it, and an ender. */
  start(req: IncomingMessage): { traceId: string; spanId: string; flags: string; run<T>(fn: () => T): T; end(status: number, route: string): void };
}

export interface RequestObserver {
  /** Called when a request starts (in-flight +1). */
  begin(): void;
  /** Called once when a response closes. */
  end(method: string, route: string, status: number, seconds: number): void;
}

export interface InstrumentOptions {
  log: { info(obj: object, msg: string): void; isLevelEnabled(level: string): boolean; requestLine?: (store: RequestStore, method: string, url: string, route: string, status: number, ms: number, aborted: boolean) => void };
  requestLog: boolean;
  observer?: RequestObserver;
  tracer?: RequestTracer;
  /**
   * Run each request inside its AsyncLocalStorage context (default true): app log lines written
   * while serving it carry its ids and metadata. On Node 20 this costs a few µs per request
   * (async hooks); false keeps the request line, metrics and spans, without that propagation.
   */
  context?: boolean;
  /** Answer this path before the app sees it (e.g. "/metrics"). */
  intercept?: { path: string; handle(req: IncomingMessage, res: ServerResponse): void };
}

/** Wrap `server.emit('request')`: every request runs inside its RequestStore. */
export function instrumentServer(server: Server, opts: InstrumentOptions): void {
  const emit = server.emit;
  const { log, requestLog, observer, tracer, intercept } = opts;
  const useContext = opts.context !== false;
  const emitRequest = emit as (this: Server, e: string, ...a: unknown[]) => boolean;
  server.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'request') return emit.apply(this, [event, ...args] as Parameters<typeof emit>);
    const req = args[0] as IncomingMessage;
    const res = args[1] as ServerResponse;
    if (intercept && req.url === intercept.path) {
      if (!this.listening) res.setHeader('connection', 'close');
      intercept.handle(req, res);
      return true;
    }
    const started = performance.now();
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && given.length > 0 && given.length <= 64 ? given : nextRequestId();
    let traceId: string;
    let spanId: string;
    let flags: string;
    let span: ReturnType<RequestTracer['start']> | undefined;
    if (tracer) {
      span = tracer.start(req);
      traceId = span.traceId;
      spanId = span.spanId;
      flags = span.flags;
    } else {
      const parent = parseTraceparent(req.headers.traceparent);
      traceId = parent ? parent.traceId : newTraceId();
      flags = parent ? parent.flags : '00';
      spanId = newSpanId();
    }
    const store: RequestStore = { id, traceId, spanId, flags, route: '', fields: { req_id: id, trace_id: traceId, span_id: spanId } };
    if (headerByPlugin) (req as unknown as Record<symbol, RequestStore>)[STORE] = store;
    else res.setHeader('x-request-id', id);
    observer?.begin();
    res.on('close', () => {
      const route = store.route || (req as unknown as Record<symbol, string | undefined>)[ROUTE] || 'unmatched';
      const status = res.statusCode;
      const ms = performance.now() - started;
      observer?.end(req.method ?? 'GET', route, status, ms / 1000);
      span?.end(status, route);
      if (!requestLog) return;
      if (log.requestLine) log.requestLine(store, req.method ?? 'GET', req.url ?? '/', route, status, ms, !res.writableFinished);
      else if (log.isLevelEnabled('info')) {
        log.info(
          { ...store.fields, method: req.method, url: req.url, route, status, ms: Math.round(ms * 1000) / 1000, ...(res.writableFinished ? null : { aborted: true }) },
          'request',
        );
      }
    });
    const run = useContext ? () => requestStorage.run(store, () => emitRequest.call(this, 'request', req, res)) : () => emitRequest.call(this, 'request', req, res);
    return span ? span.run(run) : run();
  } as typeof server.emit;
}

/**
 * Fastify plugin: records each request's route template for logs, metrics and spans, and sets
 * no other behaviour. `app.register(requestContextPlugin())`. Typed structurally (no fastify dep).
 */
export function requestContextPlugin() {
  type Req = { routeOptions?: { url?: string }; raw?: object };
  type Reply = { header?(name: string, value: string): unknown; raw?: { headersSent?: boolean; setHeader?(name: string, value: string): unknown } };
  type Instance = { addHook(name: 'onRequest', fn: (req: Req, reply: Reply, done: () => void) => void): unknown };
  const plugin = async (app: Instance) => {
    headerByPlugin = true;
    app.addHook('onRequest', (req, reply, done) => {
      const route = req.routeOptions?.url ?? '';
      const raw = req.raw as Record<symbol, unknown> | undefined;
      const s = requestStorage.getStore() ?? (raw?.[STORE] as RequestStore | undefined);
      if (s) s.route = route;
      else if (raw) raw[ROUTE] = route;
      if (s && raw?.[STORE] === s) {
        if (typeof reply.header === 'function') reply.header('x-request-id', s.id);
        else reply.raw?.setHeader?.('x-request-id', s.id);
      }
      done();
    });
  };
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
