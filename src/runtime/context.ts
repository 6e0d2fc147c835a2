// Per-request context carried through async work (request-storage.ts): request id, trace ids,
// route, and the metadata `log.metadata()` adds. `instrumentServer` wraps an http.Server so that
// every request runs inside its context, gets one log line, one histogram sample and (when OTel
// export is on) one server span. The hot path is a handful of property writes and one log call.
import diagnostics from 'node:diagnostics_channel';
import { IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { AsyncHooksContextStorage, PromiseContextStorage, type ContextMode, type ContextStorage } from './request-storage.ts';
import type { RequestLine } from './log.ts';

export interface RequestStore {
  id: string;
  traceId: string;
  spanId: string;
  /** Sampled flag of the incoming traceparent ("01" / "00"). */
  flags: string;
  /** The route template (e.g. "/orders/:id") once the framework knows it. */
  route: string;
  /** Fields added to every log line of this request (req_id, trace_id, span_id, metadata). */
  readonly fields: Record<string, unknown>;
  /** Set by log.metadata() once it added fields (the request line then serializes them all). */
  extended?: boolean;
}

/**
 * One per request; the log fields object is made only when a log line or log.metadata() asks.
 * Every field is written by the constructor, in one order (no class field initializers: V8 runs
 * those as a function of their own on every construction).
 */
class RequestContext implements RequestStore {
  declare readonly id: string;
  /**
   * The trace and span ids as the request line's text (newIdPair), made when first asked for: most
   * requests under the cap on request lines never log, and their ids would be made for nothing
   * (the random digits were a third of the hooks' instructions a request, bench/instructions.ts).
   */
  declare private pair: string | undefined;
  declare private tid: string | undefined;
  declare private sid: string | undefined;
  declare readonly flags: string;
  declare route: string;
  declare extended: boolean;
  /** The id is nextRequestId()'s (the request line need not check it). */
  declare ownId: boolean;
  declare private extra: Record<string, unknown> | undefined;
  /** Instrumentation state (not part of RequestStore); req/res are dropped once logged. */
  declare started: number;
  // The request line's parts (log.ts RequestLine), filled in when the response ends.
  declare method: string;
  declare url: string;
  declare status: number;
  declare ms: number;
  declare aborted: boolean;
  declare unlogged: number;
  declare endedAt: number;
  declare chindings: string;
  declare span: ReturnType<RequestTracer['start']> | undefined;
  declare req: IncomingMessage | undefined;
  declare res: ServerResponse | undefined;
  constructor(id: string, idsText: string | undefined, traceId: string | undefined, spanId: string | undefined, flags: string, started: number, span: ReturnType<RequestTracer['start']> | undefined, req: IncomingMessage, res: ServerResponse, ownId: boolean) {
    this.id = id;
    this.pair = idsText;
    this.tid = traceId;
    this.sid = spanId;
    this.flags = flags;
    this.route = '';
    this.extended = false;
    this.ownId = ownId;
    this.extra = undefined;
    this.started = started;
    this.method = '';
    this.url = '';
    this.status = 0;
    this.ms = 0;
    this.aborted = false;
    this.unlogged = 0;
    this.endedAt = 0;
    this.chindings = '';
    this.span = span;
    this.req = req;
    this.res = res;
  }
  get idsText(): string {
    return (this.pair ??= newIdPair());
  }
  get traceId(): string {
    return (this.tid ??= this.idsText.slice(TRACE_AT, TRACE_AT + 32));
  }
  get spanId(): string {
    return (this.sid ??= this.idsText.slice(SPAN_AT, SPAN_AT + 16));
  }
  get fields(): Record<string, unknown> {
    return (this.extra ??= { req_id: this.id, trace_id: this.traceId, span_id: this.spanId });
  }
}

/**
 * The current request's store (see request-storage.ts for the modes). A live binding: the worker
 * picks the mode (SLIPWAY_REQUEST_CONTEXT) before the server is instrumented.
 */
export let requestStorage: ContextStorage<RequestStore> = new PromiseContextStorage<RequestStore>();
/** requestStorage when it is the promise storage: the hot paths below swap its store inline. */
let promiseStorage: PromiseContextStorage<RequestStore> | undefined = requestStorage as PromiseContextStorage<RequestStore>;
let contextMode: ContextMode = 'promises';

export function setContextMode(mode: ContextMode): void {
  if (mode === contextMode) return;
  promiseStorage?.disable();
  promiseStorage = mode === 'async-hooks' ? undefined : new PromiseContextStorage<RequestStore>();
  requestStorage = promiseStorage ?? new AsyncHooksContextStorage<RequestStore>();
  contextMode = mode;
}

/** `fn` bound to the current request's context, for callback APIs started while serving it. */
export function bindRequest<F extends (...args: never[]) => unknown>(fn: F): F {
  return requestStorage.bind(fn);
}

/**
 * x-request-id goes into the response head as Node writes it: the status line handed to
 * ServerResponse#_storeHeader gets one more line. Setting it as a header instead (Fastify's
 * reply.header, or res.setHeader, which makes Node merge a framework's headers one by one) costs
 * a lower-casing, a validation and a header entry per request: 1 to 2 points of GET /hello
 * throughput (bench/hooks.ts). The id is ours or a client's header value, which Node's parser
 * has already checked; an x-request-id the app set itself wins. Where Node has no _storeHeader
 * (a future release), the header is set the ordinary way.
 */
type StoreHeader = (this: ServerResponse, firstLine: string, headers: unknown) => unknown;
const outgoingProto = ServerResponse.prototype as unknown as { _storeHeader?: StoreHeader };
let headerInHead = false;
function writeIdInHead(): boolean {
  if (headerInHead) return true;
  const storeHeader = outgoingProto._storeHeader;
  if (typeof storeHeader !== 'function') return false;
  headerInHead = true;
  outgoingProto._storeHeader = function (this: ServerResponse, firstLine: string, headers: unknown) {
    const store = storeOf(this.req);
    if (store !== undefined && !appSetRequestId(headers)) firstLine += 'x-request-id: ' + store.id + '\r\n';
    return storeHeader.call(this, firstLine, headers);
  };
  return true;
}
/**
 * Node hands _storeHeader every header of the response: the object given to writeHead when none
 * was set before, else the ones set (setHeader, keyed by lower-case name) with writeHead's merged
 * in; so looking there is enough (res.hasHeader lower-cases its argument on every call).
 */
function appSetRequestId(headers: unknown): boolean {
  if (headers === null || typeof headers !== 'object') return false;
  if (Array.isArray(headers)) return headers.some((h, i) => (Array.isArray(h) ? String(h[0]) : i % 2 === 0 ? String(h) : '').toLowerCase() === 'x-request-id');
  // The first letter first: "content-type" has 12 letters too, and lower-casing it every response showed in profiles.
  for (const k in headers) if (k.length === 12 && (k.charCodeAt(0) | 0x20) === 0x78 && k.toLowerCase() === 'x-request-id') return true;
  return false;
}

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

const PRINTABLE = /^[\x20-\x7e]*$/;
/**
 * W3C trace context headers for an outgoing call made while serving the current request: a
 * traceparent naming this request's span, and the caller's tracestate passed on as received when
 * its traceparent was accepted (a service that adds no entry of its own forwards it unchanged).
 */
export function traceHeaders(): Record<string, string> {
  const s = requestStorage.getStore();
  if (!s) return {};
  const out: Record<string, string> = { traceparent: `00-${s.traceId}-${s.spanId}-${s.flags}` };
  // Read from the request only here: no field on every request's store for a rare header.
  const headers = s instanceof RequestContext ? s.req?.headers : undefined;
  const state = headers?.tracestate;
  if (typeof state === 'string' && state.length <= 4096 && PRINTABLE.test(state) && parseTraceparent(headers!.traceparent)?.traceId === s.traceId) out.tracestate = state;
  return out;
}

// ── trace and span ids: every request's pair is one slice of a string of 64 ready-made request
// line parts, `","trace_id":"<32 hex>","span_id":"<16 hex>` (the text between the request id and
// the method in the request line, log.ts): one slice a request, one piece of the line instead of
// four, and the ids themselves are sliced from it only when asked for. The digits come from
// Math.random, 32 bits at a time, as OpenTelemetry's own id generator does: under callgrind,
// OpenSSL's generator (randomFillSync) and Node's hex encoding cost ~660 instructions a request,
// its locks alone ~160. fillPairs is written for V8's optimizing compiler: the digits unrolled,
// stored into a plain Uint8Array, the constants not exported (a first version with a loop over
// the shifts, a Buffer and exported constants was ~4× slower in a microbenchmark). ──────────────
const IDS_HEAD = '","trace_id":"';
const IDS_MID = '","span_id":"';
// Where the trace id and the span id start in a pair's text, and its length (exported under
// other names below: an exported binding is read through its module cell).
const TRACE_AT = IDS_HEAD.length;
const SPAN_AT = TRACE_AT + 32 + IDS_MID.length;
export { TRACE_AT as PAIR_TRACE_AT, SPAN_AT as PAIR_SPAN_AT };
const IDS_LENGTH = SPAN_AT + 16;
const PAIRS = 64;
const pairBuffer = Buffer.alloc(IDS_LENGTH * PAIRS);
for (let i = 0; i < PAIRS; i++) {
  pairBuffer.write(IDS_HEAD, i * IDS_LENGTH, 'latin1');
  pairBuffer.write(IDS_MID, i * IDS_LENGTH + TRACE_AT + 32, 'latin1');
}
/** The same bytes as a plain Uint8Array (fillPairs writes these; toString reads pairBuffer). */
const pairBytes = new Uint8Array(pairBuffer.buffer, pairBuffer.byteOffset, pairBuffer.length);
const HEX_DIGITS = new Uint8Array(Buffer.from('0123456789abcdef', 'latin1'));
/** New hex digits for every pair: 6 words of 32 random bits each (4 for the trace id, 2 for the span id). */
function fillPairs(): void {
  const out = pairBytes;
  const hex = HEX_DIGITS;
  for (let i = 0; i < PAIRS; i++) {
    for (let w = 0; w < 6; w++) {
      const x = (Math.random() * 0x100000000) | 0;
      const at = i * IDS_LENGTH + (w < 4 ? TRACE_AT + w * 8 : SPAN_AT + (w - 4) * 8);
      out[at] = hex[(x >> 28) & 15]!;
      out[at + 1] = hex[(x >> 24) & 15]!;
      out[at + 2] = hex[(x >> 20) & 15]!;
      out[at + 3] = hex[(x >> 16) & 15]!;
      out[at + 4] = hex[(x >> 12) & 15]!;
      out[at + 5] = hex[(x >> 8) & 15]!;
      out[at + 6] = hex[(x >> 4) & 15]!;
      out[at + 7] = hex[x & 15]!;
    }
  }
}
let pairs = '';
let pairAt = 0;
/** A new trace id and span id, as the request line's text (see above; TRACE_AT, SPAN_AT). */
export function newIdPair(): string {
  if (pairAt === pairs.length) {
    fillPairs();
    pairs = pairBuffer.toString('latin1');
    pairAt = 0;
  }
  const pair = pairs.slice(pairAt, pairAt + IDS_LENGTH);
  pairAt += IDS_LENGTH;
  return pair;
}
/** The request line's text for ids that came from elsewhere (a traceparent, the OTel SDK). */
const idPair = (traceId: string, spanId: string): string => IDS_HEAD + traceId + IDS_MID + spanId;
export const newTraceId = (): string => newIdPair().slice(TRACE_AT, TRACE_AT + 32);
export const newSpanId = (): string => newIdPair().slice(SPAN_AT, SPAN_AT + 16);

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

/**
 * Which requests get a request line (SLIPWAY_REQUEST_LOG, SLIPWAY_REQUEST_LOG_RATE and
 * SLIPWAY_REQUEST_LOG_SLOW). A response worth a look (status 400 and up, aborted, or `slowMs` or
 * slower) always gets one; the others get one while the worker writes at most `rate` of them a
 * second (a token bucket holding one second's worth), and past that they are counted instead:
 * the next line written carries the count as "unlogged". `rate` 0 is SLIPWAY_REQUEST_LOG=errors
 * (no count kept); Infinity, a line for every request.
 *
 * Why a cap by default: a line costs about as much CPU as a small route's own work (on GET /hello
 * the lines alone took 4 to 6 % of the throughput, bench/hooks-results.md), and at tens of
 * thousands of requests a second a line each is a flood no one reads (journald caps a service at
 * 10,000 lines in 30 s by default, and drops the rest uncounted). The metrics count every request.
 */
export interface RequestLogPolicy {
  rate: number;
  slowMs: number;
}

/** Request lines a second per worker for requests that went well (SLIPWAY_REQUEST_LOG_RATE). */
export const DEFAULT_REQUEST_LOG_RATE = 1000;

/** A token bucket for request lines: `rate` a second, up to one second's worth saved up. */
class LineBudget {
  private tokens: number;
  private at = -1;
  constructor(readonly rate: number) {
    this.tokens = rate;
  }
  /** One line may be written at `now` (performance.now()). */
  take(now: number): boolean {
    if (this.at >= 0) this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface InstrumentedServer {
  /** Another RequestLogPolicy from now on (`bin/NAME request-log`). */
  setRequestLog(requestLog: boolean | RequestLogPolicy): void;
}

export interface RequestObserver {
  /** Called when a request starts (in-flight +1). */
  begin(): void;
  /** Called once when a response closes. */
  end(method: string, route: string, status: number, seconds: number): void;
}

export interface InstrumentOptions {
  log: { info(obj: object, msg: string): void; isLevelEnabled(level: string): boolean; requestLine?: (line: RequestLine) => void };
  /** A line for every request (true), none (false), or as a RequestLogPolicy says. */
  requestLog: boolean | RequestLogPolicy;
  observer?: RequestObserver;
  tracer?: RequestTracer;
  /**
   * How the request's context follows its async work (request-storage.ts): "promises" (default),
   * "async-hooks" (AsyncLocalStorage) or "off" (the request line, metrics and spans stay; app log
   * lines after the first await lose the request's ids). true/false = "promises"/"off".
   */
  context?: ContextMode | boolean;
  /** Answer this path before the app sees it (e.g. "/metrics"). */
  intercept?: { path: string; handle(req: IncomingMessage, res: ServerResponse): void };
  /**
   * The drain's request tracking (drain.ts ConnectionTracker): given, the instrumentation, which
   * sees every request anyway, feeds it, so it need not follow Node's channels as well.
   */
  tracker?: { useFeed(feed: RequestFeed): void; requestStarted(res: ServerResponse): void; requestEnded(): void };
}

/** Requests in flight, as the instrumentation sees them (for the drain, drain.ts). */
export interface RequestFeed {
  readonly inFlight: number;
  /** The socket's responses not finished yet, with their start (performance.now()). */
  openOn(socket: Socket): Array<{ res: ServerResponse; startedAt: number }>;
}

/** Sockets' requests whose response has not finished yet (usually 0 or 1; more when pipelined). */
const OPEN = Symbol('slipway.open');
type TrackedSocket = Socket & { [OPEN]?: RequestContext[] };

/**
 * The store of a request whose response has not finished, found through its connection: nothing
 * is added to the request or the response object (a property added to every request and response
 * changes their hidden class in the middle of Node's own code that reads them), and the
 * instrumentation, the response head, the plugin and the emits all find it here.
 */
function storeOf(req: IncomingMessage | null | undefined): RequestContext | undefined {
  const open = (req?.socket as TrackedSocket | null | undefined)?.[OPEN];
  if (open === undefined) return undefined;
  const i = openIndex(open, req!);
  return i < 0 ? undefined : open[i];
}
function openIndex(open: RequestContext[], req: IncomingMessage): number {
  for (let i = 0; i < open.length; i++) if (open[i]!.req === req) return i;
  return -1;
}

/**
 * In "promises" mode the context follows promise chains only, but a request also runs code from
 * its own events: Fastify (like any framework) parses a POST body from the request's 'data' and
 * 'end' events and calls the handler from there. So a request with a body gets an emit of its own
 * that runs its events in its context, and so does a response whose Fastify route has onResponse
 * hooks (requestContextPlugin; they run from the response's 'finish'). Other requests and
 * responses keep the prototype's emit: patching IncomingMessage's and ServerResponse's prototype
 * emit instead (every event of every request) cost 5.7 % of GET /hello requests per CPU-second,
 * because Node's stream code, shared by every stream, then calls two more emit functions.
 * Other listeners on a response ('finish', 'close') run without the context: `bindRequest`.
 */
const requestEmit = IncomingMessage.prototype.emit;
const responseEmit = ServerResponse.prototype.emit;
function emitInContext(this: IncomingMessage | ServerResponse): boolean {
  const isResponse = this instanceof ServerResponse;
  const store = storeOf(isResponse ? this.req : this);
  const emit = isResponse ? responseEmit : requestEmit;
  const storage = promiseStorage;
  // eslint-disable-next-line prefer-rest-params
  if (store === undefined || store.req === undefined || storage === undefined || storage.current === store) return emit.apply(this, arguments as unknown as Parameters<typeof emit>);
  // eslint-disable-next-line prefer-rest-params
  return storage.apply(store, emit, this, arguments);
}
/** A body comes: Content-Length above 0 or a Transfer-Encoding (chunked). */
function hasBody(headers: IncomingMessage['headers']): boolean {
  const length = headers['content-length'];
  return (length !== undefined && length !== '0') || headers['transfer-encoding'] !== undefined;
}
/** Run this response's events in its request's context ("promises" mode; see above). */
function responseEventsInContext(res: object): void {
  if (promiseStorage !== undefined && contextMode === 'promises') (res as ServerResponse).emit = emitInContext as ServerResponse['emit'];
}
/** A server's request emit with its three arguments, for ContextStorage.run. */
function callEmit(emit: (this: Server, event: string | symbol, req: IncomingMessage, res: ServerResponse) => boolean, self: Server, event: string | symbol, req: IncomingMessage, res: ServerResponse): boolean {
  return emit.call(self, event, req, res);
}

/**
 * Instrument an http.Server: every request runs inside its RequestStore (see the context modes), and
 * gets one log line, one histogram sample and (when OTel export is on) one server span when its
 * response finishes, or when its connection closes first ("aborted").
 *
 * Why not a 'close' listener per response: the end of a response is observed through Node's
 * `http.server.response.finish` channel and one 'close' listener per connection, so a keep-alive
 * connection's requests add no listener and no closure; this is the hot path of every request,
 * and measured in bench/hooks.ts.
 */
export function instrumentServer(server: Server, opts: InstrumentOptions): InstrumentedServer {
  const emit = server.emit;
  const emitRequest = emit as unknown as (this: Server, event: string | symbol, req: IncomingMessage, res: ServerResponse) => boolean;
  const { log, requestLog, observer, tracer, intercept } = opts;
  const mode: ContextMode = opts.context === undefined || opts.context === true ? 'promises' : opts.context === false ? 'off' : opts.context;
  const useContext = mode !== 'off';
  if (useContext) setContextMode(mode);
  const eventsInContext = mode === 'promises';
  const interceptPath = intercept?.path;
  const idInHead = writeIdInHead();

  let inFlight = 0;
  const tracker = opts.tracker;
  tracker?.useFeed({
    get inFlight() {
      return inFlight;
    },
    openOn: (socket) => ((socket as TrackedSocket)[OPEN] ?? []).flatMap((s) => (s.res ? [{ res: s.res, startedAt: s.started }] : [])),
  });
  let policy: RequestLogPolicy | undefined;
  let budget: LineBudget | undefined;
  const usePolicy = (given: boolean | RequestLogPolicy): void => {
    policy = given === true ? { rate: Infinity, slowMs: Infinity } : given === false ? undefined : given;
    budget = policy !== undefined && policy.rate > 0 && policy.rate < Infinity ? new LineBudget(policy.rate) : undefined;
  };
  usePolicy(requestLog);
  // Requests since the last request line that got none of their own (only counted under a cap).
  let unlogged = 0;
  let noticeAt = -Infinity;
  // A line about the worker's request lines, not about the request that ends: without its ids.
  const requestLogLine = (fields: object, msg: string): void => void requestStorage.run(undefined as unknown as RequestStore, () => log.info({ component: 'request-log', ...fields }, msg));
  const finish = (store: RequestContext, aborted: boolean): void => {
    const req = store.req as IncomingMessage;
    const res = store.res!;
    store.req = store.res = undefined;
    inFlight--;
    tracker?.requestEnded();
    const route = store.route || 'unmatched';
    const status = res.statusCode;
    const endedAt = performance.now();
    const ms = endedAt - store.started;
    observer?.end(req.method ?? 'GET', route, status, ms / 1000);
    store.span?.end(status, route);
    if (policy === undefined) return;
    if (status < 400 && !aborted && ms < policy.slowMs && policy.rate !== Infinity) {
      if (budget === undefined) return;
      if (!budget.take(endedAt)) {
        // Said at most once a minute, so that a reader of the log learns why lines thin out.
        if (unlogged++ === 0 && endedAt - noticeAt >= 60_000) {
          noticeAt = endedAt;
          requestLogLine({ rate: budget.rate }, `request lines: more than ${budget.rate} requests a second; the others that went well get no line of their own, and the next line counts them in "unlogged" (SLIPWAY_REQUEST_LOG_RATE)`);
        }
        return;
      }
    }
    store.unlogged = unlogged;
    unlogged = 0;
    if (log.requestLine) {
      // The store is the line (RequestLine): its response parts filled in, no object per line.
      store.method = req.method ?? 'GET';
      store.url = req.url ?? '/';
      store.route = route;
      store.status = status;
      store.ms = ms;
      store.aborted = aborted;
      store.endedAt = endedAt;
      log.requestLine(store);
    }
    else if (log.isLevelEnabled('info')) {
      log.info({ ...store.fields, method: req.method, url: req.url, route, status, ms: Math.round(ms * 1000) / 1000, ...(aborted ? { aborted: true } : null), ...(store.unlogged > 0 ? { unlogged: store.unlogged } : null) }, 'request');
    }
  };
  /** The response finished: Node's http.server.response.finish channel, from its own 'finish' listener. */
  const onFinish = (message: unknown): void => {
    const m = message as { request: IncomingMessage; server: Server };
    if (m.server !== server) return;
    const open = (m.request.socket as TrackedSocket | null)?.[OPEN];
    const i = open === undefined ? -1 : openIndex(open, m.request);
    if (i < 0) return;
    const store = open![i]!;
    if (i === open!.length - 1) open!.pop();
    else open!.splice(i, 1);
    finish(store, false);
  };
  diagnostics.subscribe('http.server.response.finish', onFinish);
  // The requests since the last line, so that the lines and their counts add up to every request:
  // when the server closes (a worker's drain closes it, drain.ts stopAccepting, once its last
  // connection has ended).
  const writeUnlogged = (): void => {
    if (unlogged === 0) return;
    const n = unlogged;
    unlogged = 0;
    requestLogLine({ unlogged: n }, `request lines: the last ${n} requests got no line of their own`);
  };
  server.once('close', () => {
    diagnostics.unsubscribe('http.server.response.finish', onFinish);
    writeUnlogged();
  });
  // A response that never finished (client gone, socket destroyed, stop timeout) is logged when
  // its connection closes.
  function onSocketClose(this: TrackedSocket): void {
    const open = this[OPEN];
    this[OPEN] = undefined;
    if (open) for (const store of open) if (store.req) finish(store, true);
  }

  server.emit = function (this: Server, event: string | symbol, a?: unknown, b?: unknown): boolean {
    // eslint-disable-next-line prefer-rest-params -- apply(this, arguments) allocates nothing
    if (event !== 'request') return emit.apply(this, arguments as unknown as Parameters<typeof emit>);
    const req = a as IncomingMessage;
    const res = b as ServerResponse;
    if (interceptPath !== undefined && req.url === interceptPath) {
      if (!this.listening) res.setHeader('connection', 'close');
      intercept!.handle(req, res);
      return true;
    }
    const started = performance.now();
    // IncomingMessage#headers is a getter: read once.
    const headers = req.headers;
    const given = headers['x-request-id'];
    const ownId = !(typeof given === 'string' && given.length > 0 && given.length <= 64);
    const id = ownId ? nextRequestId() : (given as string);
    let store: RequestContext;
    if (tracer) {
      const span = tracer.start(req);
      store = new RequestContext(id, idPair(span.traceId, span.spanId), span.traceId, span.spanId, span.flags, started, span, req, res, ownId);
    } else {
      const parent = parseTraceparent(headers.traceparent);
      if (parent === undefined) store = new RequestContext(id, undefined, undefined, undefined, '00', started, undefined, req, res, ownId);
      else {
        const spanId = newSpanId();
        store = new RequestContext(id, idPair(parent.traceId, spanId), parent.traceId, spanId, parent.flags, started, undefined, req, res, ownId);
      }
    }
    if (eventsInContext && hasBody(headers)) req.emit = emitInContext as IncomingMessage['emit'];
    if (!idInHead) res.setHeader('x-request-id', id);
    const socket = req.socket as TrackedSocket;
    const open = socket[OPEN];
    if (open === undefined) {
      socket[OPEN] = [store];
      socket.once('close', onSocketClose);
    } else open.push(store);
    inFlight++;
    tracker?.requestStarted(res);
    observer?.begin();
    // The request's three arguments are passed on by name: `arguments` used anywhere but in the
    // plain `emit.apply(this, arguments)` above makes every call allocate it.
    if (store.span) {
      const span = store.span;
      return span.run(() => (useContext ? requestStorage.run(store, callEmit, emitRequest, this, event, req, res) : emitRequest.call(this, event, req, res)));
    }
    const storage = promiseStorage;
    if (useContext && storage !== undefined) {
      // Inline (the emit can be inlined here), not through storage.run.
      const prev = storage.enter(store);
      try {
        return emitRequest.call(this, event, req, res);
      } finally {
        storage.current = prev;
      }
    }
    return useContext ? requestStorage.run(store, callEmit, emitRequest, this, event, req, res) : emitRequest.call(this, event, req, res);
  } as typeof server.emit;
  return {
    setRequestLog(given) {
      // The count so far is written now: the lines and their counts still add up.
      writeUnlogged();
      usePolicy(given);
    },
  };
}


/**
 * Fastify plugin: records each request's route template for logs, metrics and spans, and sets
 * no other behaviour. `app.register(requestContextPlugin())`. Typed structurally (no fastify dep).
 */
export function requestContextPlugin() {
  type Req = { routeOptions?: { url?: string }; raw?: object };
  type Reply = { header?(name: string, value: string): unknown; raw?: object };
  type Instance = { addHook(name: 'onRequest', fn: (req: Req, reply: Reply, done: () => void) => void): unknown };
  // Fastify's request.routeOptions is a getter that builds a dozen-field object on every call (and
  // asks the router about version constraints): measured on GET /hello. The route's context,
  // which holds the same url, is read directly when Fastify has it where it has it since v4.
  let contextKey: symbol | null | undefined;
  const routeOf = (req: Req): string => {
    if (contextKey === undefined) contextKey = Object.getOwnPropertySymbols(req).find((k) => k.description === 'fastify.context') ?? null;
    const url = contextKey ? (req as unknown as Record<symbol, { config?: { url?: unknown } } | undefined>)[contextKey]?.config?.url : undefined;
    return typeof url === 'string' ? url : (req.routeOptions?.url ?? '');
  };
  const plugin = async (app: Instance) => {
    app.addHook('onRequest', (req, reply, done) => {
      // The request's store, as the instrumented server keeps it (storeOf).
      const s = storeOf(req.raw as IncomingMessage | undefined);
      if (s) {
        s.route = routeOf(req);
        // onResponse hooks run from the response's 'finish' event: in the request's context too.
        if (contextKey && (req as unknown as Record<symbol, { onResponse?: unknown } | undefined>)[contextKey]?.onResponse && reply.raw) responseEventsInContext(reply.raw);
      }
      done();
    });
  };
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
