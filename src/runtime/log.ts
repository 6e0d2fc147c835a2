// Structured JSON logs (pino): one line per event, with the release in every line, the current
// request's ids (req_id, trace_id, span_id) and its metadata mixed in, and secrets redacted by key
// (authorization, cookie, password, token, DATABASE_URL) and by shape (credentials in URLs, bearer
// tokens, token= query parameters). Lines go to stdout (or, for workers under `daemon`, straight
// to the log file) with asynchronous batched writes, and the last lines are kept in memory for
// crash reports.
import { closeSync, fstatSync, openSync, write as fsWrite, writeSync } from 'node:fs';
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
  /** Open the log file again (it was rotated); no-op when logging to an fd. */
  reopen(): void;
  /**
   * The per-request line, serialized by hand (the hot path): the same JSON a `log.info(fields,
   * 'request')` would give, with the process bindings and the request's fields. Its parts are kept
   * and the text made with the batch (see RequestLine), at the latest when the batch is written
   * (BATCH_MS) or another line is logged. Honors the level (info). The line is kept as given (the
   * request's own store, with the response's parts filled in: no object per line) and its
   * `chindings` set here.
   */
  requestLine(line: RequestLine): void;
}

/** What the request line needs of the request's store (context.ts RequestStore). */
export interface RequestLineIds {
  id: string;
  traceId: string;
  spanId: string;
  /** `","trace_id":"…","span_id":"…` when the ids come as one text (context.ts newIdPair). */
  idsText?: string;
  /** req_id, trace_id, span_id and whatever log.metadata() added. */
  fields: Record<string, unknown>;
  /** Set once log.metadata() added fields: the line then serializes `fields` whole. */
  extended?: boolean;
  /** The id was made here (nothing to escape); a client's x-request-id is checked. */
  ownId?: boolean;
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
  /**
   * Append to this file instead of the fd (workers under `daemon`, SLIPWAY_LOG_FILE); `reopen()`
   * after the supervisor rotated it.
   */
  file?: LogFile;
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

/** A log file this process appends to itself, and how it asks for the file to be rotated. */
export interface LogFile {
  path: string;
  /** Rotate before a write would take the file past this size (settings.logMaxBytes). */
  maxBytes: number;
  /** Ask the supervisor to rotate (it answers with reopen()); `bytes` is the write waiting. */
  requestRotate(bytes: number): void;
}

/** How long a write waits for a rotation it asked for before it goes to the old file anyway. */
const ROTATE_WAIT_MS = 1000;

/**
 * Writes batches to a file descriptor with asynchronous writes (one in flight at a time, the
 * batches queued meanwhile go out together in the next one), so a slow reader of the pipe (the
 * supervisor's log capture) never blocks the event loop; a partial write continues with the rest.
 *
 * With a LogFile (workers under `daemon`) it appends to that file itself: whole lines, at most
 * maxBytes per write, and when a write would take the file past maxBytes it asks the supervisor
 * to rotate and holds the lines until reopen() (ROTATE_WAIT_MS at most), so the file stays within
 * the limit as it did when the supervisor wrote every line.
 */
export class FdWriter implements Out {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private inFlight = false;
  private waiting: Array<(err?: Error) => void> = [];
  private dropped = 0;
  /** A freshly opened file to switch to once the write in flight is done (reopen). */
  private nextFd: number | undefined;
  /** Waiting for the rotation we asked for (no write in flight meanwhile). */
  private holding: NodeJS.Timeout | undefined;
  private rotateAsked = false;
  constructor(
    private fd: number,
    private readonly file?: LogFile,
  ) {}

  /** Append to the file; to the fd when it cannot be opened (the supervisor captures that). */
  static append(file: LogFile, fallbackFd: number): FdWriter {
    try {
      return new FdWriter(openSync(file.path, 'a', 0o640), file);
    } catch {
      return new FdWriter(fallbackFd);
    }
  }

  /** Continue in a new file at the same path (after the supervisor renamed the old one). */
  reopen(): void {
    if (this.file === undefined) return;
    let fd: number;
    try {
      fd = openSync(this.file.path, 'a', 0o640);
    } catch {
      return; // keep writing to the renamed file rather than losing lines
    }
    if (this.nextFd !== undefined) closeSync(this.nextFd);
    this.nextFd = fd;
    this.rotateAsked = false;
    if (this.holding !== undefined) {
      clearTimeout(this.holding);
      this.holding = undefined;
      this.inFlight = false;
      this.next();
    } else if (!this.inFlight) this.switchFd();
  }

  private switchFd(): void {
    if (this.nextFd === undefined) return;
    const old = this.fd;
    this.fd = this.nextFd;
    this.nextFd = undefined;
    try {
      closeSync(old);
    } catch {
      // already closed
    }
  }

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
    this.switchFd();
    if (this.queue.length === 0 && this.dropped === 0) {
      const done = this.waiting;
      this.waiting = [];
      for (const cb of done) cb();
      return;
    }
    const chunks = this.take();
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (this.file) this.sendToFile(buf, this.file);
    else this.send(buf);
  }

  private sendToFile(all: Buffer, file: LogFile): void {
    let buf = all;
    if (buf.length > file.maxBytes) {
      // Whole lines up to maxBytes (or one longer line); the rest goes back to the queue.
      let cut = buf.lastIndexOf(0x0a, file.maxBytes - 1) + 1;
      if (cut === 0) cut = buf.indexOf(0x0a, file.maxBytes) + 1 || buf.length;
      if (cut < buf.length) {
        this.queue.unshift(buf.subarray(cut));
        this.queuedBytes += buf.length - cut;
        buf = buf.subarray(0, cut);
      }
    }
    let size = 0;
    try {
      size = fstatSync(this.fd).size;
    } catch {
      // the write below reports what is wrong with the fd
    }
    if (!this.rotateAsked && size > 0 && size + buf.length > file.maxBytes) {
      this.queue.unshift(buf);
      this.queuedBytes += buf.length;
      this.rotateAsked = true;
      this.inFlight = true;
      this.holding = setTimeout(() => {
        this.holding = undefined;
        this.inFlight = false;
        this.next();
      }, ROTATE_WAIT_MS);
      this.holding.unref();
      file.requestRotate(buf.length);
      return;
    }
    this.send(buf);
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
 * What a request line is made of, kept until the batch is written. The line is made there, with
 * the batch's other request lines, not when the response finishes: measured on GET /hello, making
 * it in the middle of each request (code and data cold after Node's and the framework's work) cost
 * about twice what the same code costs in a loop over the batch. Any other log line first
 * makes the waiting request lines, so the file keeps the order in which things happened.
 */
export interface RequestLine extends RequestLineIds {
  method: string;
  url: string;
  route: string;
  status: number;
  ms: number;
  aborted: boolean;
  /** Requests before this one that got no line of their own (a cap on lines, RequestLogPolicy); 0 or absent: none. */
  unlogged?: number;
  /** performance.now() at the end of the response (the line's time). */
  endedAt: number;
  /** The logger's bindings then (service, release, pid, process-wide metadata; set by requestLine). */
  chindings: string;
}

/**
 * Scrubs each line and encodes it at once into the current batch buffer, passed on at most every
 * BATCH_MS or when full: a busy worker makes tens of writes a second, not one per request. Lines
 * become bytes right away because a batch held as one long string (a rope of thousands of small
 * strings) survives young-generation GCs and must be flattened and encoded at the end: measured
 * about 3 µs a request on GET /hello. The last lines for crash reports are read back from the last
 * batches (kept by reference) rather than kept as strings, for the same reason.
 */
const BATCH_MS = 20;
const BATCH_BYTES = 128 * 1024;
/** Request lines waiting to be made (see RequestLine); made at once past this many (≈ 80 KiB of text). */
const MAX_PENDING = 256;
/**
 * Buffer#utf8Write(string, offset) where Node has it (every release since 0.x; what buf.write
 * calls after sorting out its optional arguments).
 */
const utf8Write: (buf: Buffer, s: string, at: number) => number =
  typeof (Buffer.prototype as { utf8Write?: unknown }).utf8Write === 'function'
    ? (buf, s, at) => (buf as unknown as { utf8Write(s: string, at: number): number }).utf8Write(s, at)
    : (buf, s, at) => buf.write(s, at, 'utf8');
class LineSink {
  private buf = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;
  /** Lines in the current batch. */
  private lines = 0;
  /** The last batches passed on, oldest first, with their line counts: at least `keep` lines. */
  private recentBatches: Array<{ bytes: Buffer; lines: number }> = [];
  private recentCount = 0;
  private pending: RequestLine[] = [];
  /** Makes a waiting request line's text (set by createLogger). */
  formatPending: ((r: RequestLine) => string) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private armed = false;
  constructor(
    private readonly keep: number,
    private readonly out: Out,
  ) {}
  write(line: string): void {
    this.makePending();
    this.append(scrub(line));
  }
  /** A request line, made later with the batch (RequestLine). */
  defer(r: RequestLine): void {
    this.pending.push(r);
    if (this.pending.length >= MAX_PENDING) this.makePending();
    else this.arm();
  }
  private makePending(): void {
    if (this.pending.length === 0) return;
    const list = this.pending;
    this.pending = [];
    const format = this.formatPending!;
    // One string for all of them, encoded with one call (a native call per line cost more).
    let text = '';
    for (let i = 0; i < list.length; i++) text += format(list[i]!);
    this.append(text, list.length);
  }
  /** Scrubbed text of `lines` whole lines into the batch. */
  private append(text: string, lines = 1): void {
    // A UTF-8 text has at least as many bytes as UTF-16 units, so a text longer than the space
    // left cannot fit: the batch is passed on first. Then the text is written straight into the
    // batch when it may fit: utf8Write stops where the buffer ends, and no character takes more
    // than 4 bytes, so with 4 or more bytes to spare the whole text went in. Only otherwise is its
    // exact size counted (another pass over ~70 KiB of request lines: measured at ~0.1 µs a request).
    if (this.used > 0 && this.used + text.length > BATCH_BYTES) this.drain();
    if (this.used + text.length <= BATCH_BYTES) {
      const written = utf8Write(this.buf, text, this.used);
      if (written <= BATCH_BYTES - this.used - 4) {
        this.used += written;
        this.lines += lines;
        this.arm();
        return;
      }
    }
    const size = Buffer.byteLength(text);
    if (this.used + size > BATCH_BYTES) {
      this.drain();
      if (size > BATCH_BYTES) {
        const bytes = Buffer.from(text, 'utf8');
        this.remember(bytes, lines);
        this.out.write(bytes);
        return;
      }
    }
    this.used += utf8Write(this.buf, text, this.used);
    this.lines += lines;
    this.arm();
  }
  private arm(): void {
    if (this.armed) return;
    // One timer, re-armed with refresh(): no new Timeout per batch.
    this.armed = true;
    if (this.timer) this.timer.refresh();
    else this.timer = setTimeout(this.onTimer, BATCH_MS);
  }
  private onTimer = (): void => {
    this.armed = false;
    this.drain();
  };
  /** The batch so far (waiting request lines made first), and a fresh buffer for the next. */
  private take(): Buffer | undefined {
    this.makePending();
    if (this.used === 0) return undefined;
    let chunk = this.buf.subarray(0, this.used);
    // A small batch is copied so that remembering it does not hold a whole batch buffer.
    if (this.used < BATCH_BYTES / 8) chunk = Buffer.from(chunk);
    else this.buf = Buffer.allocUnsafe(BATCH_BYTES);
    this.used = 0;
    this.remember(chunk, this.lines);
    this.lines = 0;
    return chunk;
  }
  private remember(bytes: Buffer, lines: number): void {
    this.recentBatches.push({ bytes, lines });
    this.recentCount += lines;
    while (this.recentBatches.length > 1 && this.recentCount - this.recentBatches[0]!.lines >= this.keep) this.recentCount -= this.recentBatches.shift()!.lines;
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
  /** The last `keep` lines, oldest first, without their newlines. */
  recent(): string[] {
    this.makePending();
    const text = Buffer.concat([...this.recentBatches.map((b) => b.bytes), this.buf.subarray(0, this.used)]).toString('utf8');
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-this.keep);
  }
}

/** What a request line is made from (RequestLine without its time source). */
export type RequestLineParts = Omit<RequestLine, 'endedAt'>;

const SAFE_ID = /^[A-Za-z0-9._:-]*$/;
// Printable ASCII without '"' and '\\' (nothing to escape) and without '=', '@' and space (no
// query secret, URL credentials or token to scrub): most request paths.
const PLAIN_URL = /^[\x21\x23-\x3c\x3e\x3f\x41-\x5b\x5d-\x7e]*$/;
/** "000" … "999": the milliseconds of the time and the decimals of the duration. */
const DIGITS3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** ".000" … ".999", and "0" … "999": a duration under a second is two kept strings joined. */
const DOT_DIGITS3 = DIGITS3.map((d) => '.' + d);
const WHOLE = Array.from({ length: 1000 }, (_, i) => String(i));
/** ".000,"msg":"request"}\n" …: the end of a request line that was not aborted, one piece. */
const DOT_DIGITS3_END = DOT_DIGITS3.map((d) => d + ',"msg":"request"}\n');
/** A request line's end after its duration: "aborted" and "unlogged" when there are, and the message. */
const lineEnd = (r: RequestLineParts): string =>
  (r.aborted ? ',"aborted":true' : '') + (r.unlogged ? ',"unlogged":' + r.unlogged : '') + ',"msg":"request"}\n';
/**
 * A kept piece as one flat string. A concatenation is a tree of the strings it joined (V8's cons
 * strings), and encoding a batch walks every node of every line's tree: a kept piece left as a
 * tree of 3 to 6 nodes is walked again in every line it goes into. JSON.parse makes a new
 * sequential string with the same code units (unlike a round trip through UTF-8 bytes, which
 * would replace a lone surrogate).
 */
const flat = (s: string): string => JSON.parse(JSON.stringify(s)) as string;
/** Past this many distinct chindings, methods or routes, pieces are made per line, not kept. */
const MAX_CACHED = 1000;

/**
 * Makes request lines as JSON text: the same text that `log.info({...fields, method, url, route,
 * status, ms}, 'request')` would give, with pino's isoTime. `pieces` (the default) joins a few
 * kept strings per line instead of ~30 small ones: the time with the bindings (one per
 * millisecond), the method and the route with its status are each made once, so a line is about
 * 12 concatenations (every one a cons string that the batch's encode walks). `pieces: false`
 * builds every part per line (the reference the tests compare with). `wall` is the line's time in
 * epoch milliseconds.
 */
export function requestLineText(opts: { pieces?: boolean } = {}): (r: RequestLineParts, wall: number) => string {
  const pieces = opts.pieces !== false;
  // The second's prefix ("…T18:00:00.") made once a second (toISOString costs ~1 µs a call).
  let secStart = -1;
  let head = '';
  // A line's start up to its request id, by millisecond of the current second (for the bindings
  // in startsFor): the lines of one millisecond share it (see the pieces path below).
  let starts: string[] = [];
  let startsFor = '';
  let flatMs = -1;
  const second = (now: number): number => {
    const ms = now - secStart;
    if (secStart >= 0 && ms >= 0 && ms < 1000) return ms;
    secStart = now - (now % 1000);
    head = '{"level":"info","time":"' + new Date(secStart).toISOString().slice(0, 20);
    starts = [];
    flatMs = -1;
    return now - secStart;
  };
  const routes = new Map<string, string>();
  const routeJson = (route: string): string => {
    let j = routes.get(route);
    if (j === undefined) {
      j = JSON.stringify(route);
      if (routes.size < MAX_CACHED) routes.set(route, j);
    }
    return j;
  };
  /**
   * Milliseconds with 3 decimals from kept strings (a double's toString costs several times more):
   * the whole milliseconds, then `decimals` (DOT_DIGITS3, or DOT_DIGITS3_END with the line's end).
   */
  const msText = (ms: number, decimals = DOT_DIGITS3): string => {
    const us = Math.round(ms * 1000);
    const whole = Math.floor(us / 1000);
    return (whole < 1000 ? WHOLE[whole]! : String(whole)) + decimals[us - whole * 1000];
  };
  // The last url's text: a busy route is asked for the same path again and again (a string
  // compare is cheaper than the regular expression).
  let lastUrl = '';
  let lastUrlText = '';
  /** The url between its quotes, escaped, with any secret scrubbed. */
  const urlText = (url: string): string => {
    if (url === lastUrl) return lastUrlText;
    lastUrl = url;
    return (lastUrlText = escapedUrl(url));
  };
  const escapedUrl = (url: string): string => {
    if (PLAIN_URL.test(url)) return url;
    let u = JSON.stringify(url);
    if (u.includes('=') || u.includes('://') || u.includes(' ')) u = scrub(u);
    return u.slice(1, -1);
  };
  /** ,"req_id":…,"trace_id":…,"span_id":… and any metadata the app added. */
  const idFieldsText = (store: RequestLine | RequestLineParts): string => {
    if (store.extended) {
      // Only the url and any metadata the app added can hold a secret: scrub those parts.
      let f = JSON.stringify(store.fields);
      if (f.length > 110) f = scrub(f);
      return f.length > 2 ? ',' + f.slice(1, -1) : '';
    }
    // trace/span ids are hex; the request id is ours or a client's x-request-id (escape that).
    const id = store.ownId || SAFE_ID.test(store.id) ? '"' + store.id + '"' : scrub(JSON.stringify(store.id));
    return ',"req_id":' + id + ',"trace_id":"' + store.traceId + '","span_id":"' + store.spanId + '"';
  };
  const general = (r: RequestLineParts, wall: number): string => {
    const ms = second(wall);
    return (
      head + DIGITS3[ms] + 'Z"' + r.chindings + idFieldsText(r) + ',"method":"' + r.method + '","url":"' + urlText(r.url) + '","route":' + routeJson(r.route) +
      ',"status":' + r.status + ',"ms":' + msText(r.ms) + lineEnd(r)
    );
  };
  if (!pieces) return general;

  // 'Z"' + bindings + ',"req_id":"', by bindings string (they change with setBindings only).
  const afterTime = new Map<string, string>();
  // '","method":"GET","url":"', by method.
  const methodPart = new Map<string, string>();
  // '","route":"/orders/:id","status":200,"ms":', by route, then status.
  const routePart = new Map<string, string[]>();
  // The pieces of the previous line: lines in a row mostly share their bindings, method, route
  // and status, and comparing four values is cheaper than three Map lookups.
  let lastChindings = '';
  let lastMethod = '';
  let lastRoute = '';
  let lastStatus = -1;
  let a = '';
  let m = '';
  let t = '';
  let midUrl = '';
  let midM = '';
  let midT = '';
  let mid = '';
  let midFlat = false;
  const pieceFor = (r: RequestLineParts): void => {
    lastChindings = r.chindings;
    lastMethod = r.method;
    lastRoute = r.route;
    lastStatus = r.status;
    let ai = afterTime.get(r.chindings);
    if (ai === undefined) {
      ai = 'Z"' + r.chindings + ',"req_id":"';
      if (afterTime.size < MAX_CACHED) afterTime.set(r.chindings, (ai = flat(ai)));
    }
    let mi = methodPart.get(r.method);
    if (mi === undefined) {
      mi = '","method":"' + r.method + '","url":"';
      if (methodPart.size < MAX_CACHED) methodPart.set(r.method, (mi = flat(mi)));
    }
    let byStatus = routePart.get(r.route);
    const keep = byStatus !== undefined || routePart.size < MAX_CACHED;
    if (byStatus === undefined) {
      byStatus = [];
      if (keep) routePart.set(r.route, byStatus);
    }
    let ti = byStatus[r.status];
    if (ti === undefined) {
      ti = '","route":' + routeJson(r.route) + ',"status":' + r.status + ',"ms":';
      if (keep) byStatus[r.status] = ti = flat(ti);
    }
    a = ai;
    m = mi;
    t = ti;
  };
  return (r, wall) => {
    if (r.extended || !(r.ownId || SAFE_ID.test(r.id))) return general(r, wall);
    if (r.status !== lastStatus || r.route !== lastRoute || r.method !== lastMethod || r.chindings !== lastChindings) pieceFor(r);
    const ms = second(wall);
    // The time and the bindings as one string for all the lines of a millisecond, flattened when
    // its second line comes (reading a character of a concatenation makes V8 flatten it in place;
    // the read is used, so that no compiler drops it): ~20 % of a line's cost in a microbenchmark
    // at 8 lines a millisecond (encoding walks every piece of every line).
    if (a !== startsFor) {
      startsFor = a;
      starts = [];
    }
    let start = starts[ms];
    if (start === undefined) start = starts[ms] = head + DIGITS3[ms] + a;
    else if (ms !== flatMs && start.charCodeAt(0) === 0x7b) flatMs = ms;
    // The method, url, route and status as one piece while they repeat (flattened in place on its
    // second use, like the line's start).
    if (r.url !== midUrl || m !== midM || t !== midT) {
      midUrl = r.url;
      midM = m;
      midT = t;
      mid = m + urlText(r.url) + t;
      midFlat = false;
    } else if (!midFlat && mid.charCodeAt(0) === 0x22) midFlat = true;
    const ids = r.idsText ?? '","trace_id":"' + r.traceId + '","span_id":"' + r.spanId;
    if (r.aborted || r.unlogged) return start + r.id + ids + mid + msText(r.ms) + lineEnd(r);
    return start + r.id + ids + mid + msText(r.ms, DOT_DIGITS3_END);
  };
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

export function createLogger(opts: LogOptions): Logger {
  let out: Out;
  if (opts.write) {
    const write = opts.write;
    out = { write: (chunk) => write(chunk.toString('utf8')) };
  }
  else out = opts.file ? FdWriter.append(opts.file, opts.fd ?? 1) : new FdWriter(opts.fd ?? 1);
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
  // The request line passes the performance.now() it measured its duration with: wall time is
  // that plus an offset read from Date.now() once a second (so a clock step shows within a
  // second), not a Date.now() per line.
  let wallOffset = 0;
  let offsetUntil = -1;
  const wallMs = (perfNow: number): number => {
    if (perfNow >= offsetUntil || perfNow < offsetUntil - 1000) {
      wallOffset = Date.now() - performance.now();
      offsetUntil = perfNow + 1000;
    }
    return Math.floor(perfNow + wallOffset);
  };
  const text = requestLineText();
  const format = (r: RequestLine): string => text(r, wallMs(r.endedAt));
  sink.formatPending = format;
  logger.requestLine = (line) => {
    if (logger.levelVal > 30) return;
    line.chindings = chindings();
    sink.defer(line);
  };
  logger.recentLines = () => sink.recent();
  logger.flushSync = () => sink.flushSync();
  logger.reopen = () => (out instanceof FdWriter ? out.reopen() : undefined);
  return logger;
}
