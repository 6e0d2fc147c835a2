// Structured JSON logs (pino): one line per event, with the release in every line.
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  name: string;
  version: string;
  level?: string;
  /** 1 (stdout, default) or 2 (stderr: eval/migrate print their result on stdout). */
  fd?: number;
}

export function createLogger(opts: LogOptions): Logger {
  return pino({
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    base: { service: opts.name, release: opts.version, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.cookie', 'cookie', '*.cookie', 'secret', '*.secret'],
      censor: '[redacted]',
    },
  }, pino.destination({ dest: opts.fd ?? 1, sync: false }));
}
