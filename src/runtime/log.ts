// Structured JSON logs (pino): one line per event, with the release in every line, the current
// request's ids (req_id, trace_id, span_id) and its metadata mixed in, and secrets redacted by key
// (authorization, cookie, password, token, DATABASE_URL) and by shape (credentials in URLs, bearer
// tokens, token= query parameters). Lines go to stdout with asynchronous batched writes, and the
// last lines are kept in memory for crash reports.
import { write as fsWrite, writeSync } from 'node:fs';
import pino, { type Logger as PinoLogger } from 'pino';
import { requestStorage } from './context.ts';

export interface LogMethods {
  /**
   * Add fields to every following log line: of the current request when called while serving
   * one, otherwise of the whole process. `log.metadata({ service: 'orders' })`.
   */
  metadata(fields: Record<string, unknown>): void;
  /** The last lines written (already serialized and redacted), oldest first. */
  recentLines(): string[];
  /** Write buffered lines now, synchronously (crash handlers). */
  flushSync(): void;
  /**
   * The per-request line, serialized by hand (the hot path): the same JSON a `log.info(fields,
   * 'request')` would give, with the process bindings and the request's fields, in about a third
   * of the time. Honors the level (info).
   */
  requestLine(store: RequestLineIds, method: string, url: string, route: string, status: number, ms: number, aborted: boolean): void;
}

/** What the request line needs of the request's store (context.ts RequestStore). */
export interface RequestLineIds {
  id: string;
  traceId: string;
  spanId: string;
  /** req_id, trace_id, span_id and whatever log.metadata() added. */
  fields: Record<string, unknown>;
  /** Set once log.metadata() added fields: the line then serializes `fields` whole. */
  extended?: boolean;
}

export type Logger = PinoLogger & LogMethods;

export interface LogOptions {
  name: string;
  version: string;
  level?: string;
  /** How many recent lines to keep for crash reports (default 50). */
  keepLines?: number;
  /** 1 (stdout, default) or 2 (stderr: eval/migrate print their result on stdout). */
  fd?: number;
  /** Where lines go (default: the fd, batched). For tests and benchmarks. */
  write?: (text: string) => void;
}


const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@"'\\]*:)[^\s@"'\\/]+@/gi;
const BEARER = /\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{4,}/gi;
const QUERY_SECRET = /([?&;](?:token|access_token|password|passwd|secret|api_key|apikey|key|sig|signature)=)[^&\s"'\\]+/gi;
// Secret keys at any depth of the serialized line: their string/number/boolean value is replaced.
const SECRET_KEY_NAMES = ['password', 'passwd', 'secret', 'token', 'access_token', 'refresh_token', 'api_key', 'apiKey', 'authorization', 'Authorization', 'proxy-authorization', 'cookie', 'Cookie', 'set-cookie', 'DATABASE_URL', 'databaseUrl', 'RELEASE_COOKIE'];
const SECRET_KEYS = new RegExp(`"(${SECRET_KEY_NAMES.join('|')})":("(?:[^"\\\\]|\\\\.)*"|[^,}\\]]+)`, 'g');
/** A cheap precheck: every secret key name contains one of these fragments. */
const KEY_HINTS = ['pass', 'secret', 'token', 'api', 'uthoriz', 'ookie', 'URL', 'Url', 'COOKIE'];

/**
 * Remove secrets from a serialized line: by key (any depth) and by shape (credentials in URLs,
 * bearer/basic tokens, secret query parameters). Cheap when the line has none of the markers.
 */
export function scrub(s: string): string {
  for (const h of KEY_HINTS) {
    if (s.includes(h)) {
      s = s.replace(SECRET_KEYS, '"$1":"[redacted]"');
      break;
    }
  }
  if (s.includes('://')) s = s.replace(URL_CREDENTIALS, '$1[redacted]@');
  if (s.includes('earer ') || s.includes('asic ')) s = s.replace(BEARER, '$1$2[redacted]');
  if (s.includes('=')) s = s.replace(QUERY_SECRET, '$1[redacted]');
  return s;
}

/** Where serialized lines go: batches of UTF-8 bytes. */
interface Out {
  write(chunk: Buffer): unknown;
  /** Write this chunk and anything queued before it now, synchronously. */
  writeSync?(chunk: Buffer): void;
  flush?(cb: (err?: Error) => void): void;
}

/** Past this many bytes waiting (the supervisor stopped reading), batches are dropped and counted. */
const MAX_QUEUED = 16 * 1024 * 1024;

/**
 * Writes batches to a file descriptor with asynchronous writes (one in flight at a time, the
 * batches queued meanwhile go out together in the next one), so a slow reader of the pipe (the
 * supervisor's log capture) never blocks the event loop; a partial write continues with the rest.
 */
export class FdWriter implements Out {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private inFlight = false;
  private waiting: Array<(err?: Error) => void> = [];
  private dropped = 0;
  constructor(private readonly fd: number) {}

  write(chunk: Buffer): void {
    if (this.queuedBytes + chunk.length > MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    if (!this.inFlight) this.next();
  }

  private take(): Buffer[] {
    const chunks = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.dropped > 0) {
      chunks.unshift(Buffer.from(`{"level":"warn","time":"${new Date().toISOString()}","pid":${process.pid},"dropped_batches":${this.dropped},"msg":"log lines dropped: the reader of this process's output fell behind"}\n`));
      this.dropped = 0;
    }
    return chunks;
  }

  private next(): void {
    if (this.queue.length === 0 && this.dropped === 0) {
      const done = this.waiting;
      this.waiting = [];
      for (const cb of done) cb();
      return;
    }
    const chunks = this.take();
    this.send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  }

  private send(buf: Buffer): void {
    this.inFlight = true;
    fsWrite(this.fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => this.send(buf), 5).unref();
          return;
        }
        // EPIPE/EBADF: the reader is gone (the worker drains on disconnect); a log line is not worth a crash.
        this.queue = [];
        this.queuedBytes = 0;
      } else if (n < buf.length) return this.send(buf.subarray(n));
      this.inFlight = false;
      this.next();
    });
  }

  /** Call back once everything written so far has reached the fd. */
  flush(cb: (err?: Error) => void): void {
    if (!this.inFlight && this.queue.length === 0) return cb();
    this.waiting.push(cb);
  }

  /**
   * Write what is queued and this chunk now, synchronously (crash handlers, exit). An
   * asynchronous write in flight finishes on its own, so its lines may land after these.
   */
  writeSync(chunk: Buffer): void {
    const buf = Buffer.concat([...this.take(), chunk]);
    for (let off = 0, tries = 0; off < buf.length && tries < 1000; ) {
      try {
        off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        tries++;
      }
    }
  }
}

/**
 * Scrubs each line, keeps a ring of the last ones, and encodes it at once into the current batch
 * buffer, passed on at most every BATCH_MS or when full: a busy worker makes tens of writes a
 * second, not one per request. Lines become bytes right away because a batch held as one long
 * string (a rope of thousands of small strings) survives young-generation GCs and must be
 * flattened and encoded at the end: measured about 3 µs a request on GET /hello.
 */
const BATCH_MS = 20;
const BATCH_BYTES = 64 * 1024;
class LineSink {
  private ring: string[];
  private buf = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  private timer: NodeJS.Timeout | undefined;
  private at = 0;
  private full = false;
  constructor(
    keep: number,
    private readonly out: Out,
  ) {
    this.ring = new Array<string>(Math.max(1, keep));
  }
  write(line: string): void {
    this.writeScrubbed(scrub(line));
  }
  /** A line whose parts were scrubbed by the caller (the request line). */
  writeScrubbed(line: string): void {
    this.ring[this.at] = line;
    if (++this.at === this.ring.length) {
      this.at = 0;
      this.full = true;
    }
    // A UTF-16 code unit takes at most 3 UTF-8 bytes.
    if (this.used + line.length * 3 > BATCH_BYTES) {
      this.drain();
      if (line.length * 3 > BATCH_BYTES) {
        this.out.write(Buffer.from(line, 'utf8'));
        return;
      }
    }
    this.used += this.buf.write(line, this.used, 'utf8');
    if (this.timer === undefined) this.timer = setTimeout(this.drain, BATCH_MS);
  }
  /** The batch so far, and a fresh buffer for the next (the old one goes to the writer). */
  private take(): Buffer | undefined {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.used === 0) return undefined;
    const chunk = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
    return chunk;
  }
  private drain = (): void => {
    const chunk = this.take();
    if (chunk) this.out.write(chunk);
  };
  flushSync = (): void => {
    const chunk = this.take() ?? Buffer.alloc(0);
    try {
      if (this.out.writeSync) this.out.writeSync(chunk);
      else if (chunk.length) this.out.write(chunk);
    } catch {
      // fd gone or not open yet: nothing else to do with a log line
    }
  };
  flush(cb?: (err?: Error) => void): void {
    this.drain();
    if (this.out.flush) this.out.flush((err) => cb?.(err));
    else cb?.();
  }
  recent(): string[] {
    const lines = this.full ? [...this.ring.slice(this.at), ...this.ring.slice(0, this.at)] : this.ring.slice(0, this.at);
    return lines.map((l) => l.replace(/\n$/, ''));
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

export function createLogger(opts: LogOptions): Logger {
  let out: Out;
  if (opts.write) {
    const write = opts.write;
    out = { write: (chunk) => write(chunk.toString('utf8')) };
  }
  else out = new FdWriter(opts.fd ?? 1);
  const sink = new LineSink(opts.keepLines ?? 50, out);
  // process.exit() in app code must not lose the last lines (batched or queued).
  if (!opts.write) process.once('exit', () => sink.flushSync());
  const logger = pino(
    {
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: opts.name, release: opts.version, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => requestStorage.getStore()?.fields ?? EMPTY,
      // Never mutate the request's field object; explicit fields win over the context's.
      mixinMergeStrategy: (mergeObject, mixinObject) => (mixinObject === EMPTY ? mergeObject : Object.assign({}, mixinObject, mergeObject)),
    },
    sink,
  ) as Logger;
  logger.metadata = (fields) => {
    const s = requestStorage.getStore();
    if (s) {
      Object.assign(s.fields, fields);
      s.extended = true;
    }
    else logger.setBindings(fields);
  };
  const chindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] !== undefined ? () => (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] : () => '';
  // The timestamp as pino's isoTime gives it (Date#toISOString), formatted once a second and
  // completed with the milliseconds (toISOString costs about 1 µs a call).
  let secStart = -1;
  let isoPrefix = '';
  const isoTime = (now: number): string => {
    const ms = now - secStart;
    if (secStart < 0 || ms < 0 || ms >= 1000) {
      secStart = now - (now % 1000);
      isoPrefix = new Date(secStart).toISOString().slice(0, 20);
      return isoTime(now);
    }
    return isoPrefix + (ms < 10 ? '00' + ms : ms < 100 ? '0' + ms : ms) + 'Z';
  };
  const SAFE_ID = /^[A-Za-z0-9._:-]*$/;
  const routes = new Map<string, string>();
  const routeJson = (route: string): string => {
    let j = routes.get(route);
    if (j === undefined) {
      j = JSON.stringify(route);
      if (routes.size < 1000) routes.set(route, j);
    }
    return j;
  };
  logger.requestLine = (store, method, url, route, status, ms, aborted) => {
    if (!logger.isLevelEnabled('info')) return;
    let ids: string;
    if (store.extended) {
      // Only the url and any metadata the app added can hold a secret: scrub those parts.
      let f = JSON.stringify(store.fields);
      if (f.length > 110) f = scrub(f);
      ids = f.length > 2 ? ',' + f.slice(1, -1) : '';
    } else {
      // trace/span ids are hex; the request id is ours or a client's x-request-id (escape that).
      const id = SAFE_ID.test(store.id) ? '"' + store.id + '"' : scrub(JSON.stringify(store.id));
      ids = `,"req_id":${id},"trace_id":"${store.traceId}","span_id":"${store.spanId}"`;
    }
    // A url can hold a secret only as credentials (://), a query parameter (=) or a raw token.
    let u = JSON.stringify(url);
    if (u.includes('=') || u.includes('://') || u.includes(' ')) u = scrub(u);
    sink.writeScrubbed(
      `{"level":"info","time":"${isoTime(Date.now())}"${chindings()}${ids},"method":"${method}","url":${u},"route":${routeJson(route)},"status":${status},"ms":${Math.round(ms * 1000) / 1000}${aborted ? ',"aborted":true' : ''},"msg":"request"}\n`,
    );
  };
  logger.recentLines = () => sink.recent();
  logger.flushSync = () => sink.flushSync();
  return logger;
}
