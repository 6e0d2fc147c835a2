// Structured JSON logs (pino): one line per event, with the release in every line, the current
// request's ids (req_id, trace_id, span_id) and its metadata mixed in, and secrets redacted by key
// (authorization, cookie, password, token, DATABASE_URL) and by shape (credentials in URLs, bearer
// tokens, token= query parameters). Lines are batched per event-loop turn to stdout, and the last
// lines are kept in memory for crash reports.
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

export const REDACT_PATHS = [
  'password', '*.password', 'passwd', '*.passwd', 'secret', '*.secret',
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token', 'api_key', '*.api_key', 'apiKey', '*.apiKey',
  'authorization', '*.authorization', 'Authorization', '*.Authorization', 'cookie', '*.cookie', 'set-cookie', '*["set-cookie"]',
  'headers.authorization', '*.headers.authorization', 'headers.cookie', '*.headers.cookie', 'headers["proxy-authorization"]', '*.headers["proxy-authorization"]',
  'DATABASE_URL', '*.DATABASE_URL', 'databaseUrl', '*.databaseUrl', 'RELEASE_COOKIE', '*.RELEASE_COOKIE',
];

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@"'\\]*:)[^\s@"'\\/]+@/gi;
const BEARER = /\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{4,}/gi;
const QUERY_SECRET = /([?&;](?:token|access_token|password|passwd|secret|api_key|apikey|key|sig|signature)=)[^&\s"'\\]+/gi;

/** Remove secrets by shape from a serialized line; cheap when the line has none of the markers. */
export function scrub(s: string): string {
  if (s.includes('://')) s = s.replace(URL_CREDENTIALS, '$1[redacted]@');
  if (s.includes('earer ') || s.includes('asic ')) s = s.replace(BEARER, '$1$2[redacted]');
  if (s.includes('=')) s = s.replace(QUERY_SECRET, '$1[redacted]');
  return s;
}

/** Batches lines per event-loop turn (or 16 KiB) and keeps a ring of the last ones. */
class LineSink {
  private buf = '';
  private scheduled = false;
  private ring: string[];
  private at = 0;
  private full = false;
  constructor(
    keep: number,
    private readonly out: (text: string) => void,
  ) {
    this.ring = new Array<string>(Math.max(1, keep));
  }
  write(line: string): void {
    line = scrub(line);
    this.ring[this.at] = line;
    if (++this.at === this.ring.length) {
      this.at = 0;
      this.full = true;
    }
    this.buf += line;
    if (this.buf.length > 16_384) this.flushSync();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSync);
    }
  }
  flushSync = (): void => {
    this.scheduled = false;
    if (!this.buf) return;
    const text = this.buf;
    this.buf = '';
    try {
      this.out(text);
    } catch {
      // stdout gone: nothing else to do with a log line
    }
  };
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }
  recent(): string[] {
    const lines = this.full ? [...this.ring.slice(this.at), ...this.ring.slice(0, this.at)] : this.ring.slice(0, this.at);
    return lines.map((l) => l.replace(/\n$/, ''));
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

export function createLogger(opts: LogOptions): Logger {
  const sink = new LineSink(opts.keepLines ?? 50, opts.write ?? (opts.fd === 2 ? (t) => void process.stderr.write(t) : (t) => void process.stdout.write(t)));
  const logger = pino(
    {
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: opts.name, release: opts.version, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      mixin: () => requestStorage.getStore()?.fields ?? EMPTY,
      // Never mutate the request's field object; explicit fields win over the context's.
      mixinMergeStrategy: (mergeObject, mixinObject) => (mixinObject === EMPTY ? mergeObject : Object.assign({}, mixinObject, mergeObject)),
    },
    sink,
  ) as Logger;
  logger.metadata = (fields) => {
    const s = requestStorage.getStore();
    if (s) Object.assign(s.fields, fields);
    else logger.setBindings(fields);
  };
  logger.recentLines = () => sink.recent();
  logger.flushSync = () => sink.flushSync();
  return logger;
}
