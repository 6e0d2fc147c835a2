// Crash reports: an uncaught exception or an unhandled rejection writes a report (error, stack,
// release, Node version, uptime, memory, the worker's last log lines) through every reporter, then
// the worker exits and the supervisor restarts it. The file reporter is synchronous; the webhook
// reporter retries with backoff but never holds the exit past the crash deadline.
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scrub } from './log.ts';

export interface CrashReport {
  at: string;
  kind: 'uncaughtException' | 'unhandledRejection';
  error: { name: string; message: string; stack?: string; code?: string };
  release: { name: string; version: string };
  node: string;
  pid: number;
  worker: string | undefined;
  uptime_s: number;
  memory: NodeJS.MemoryUsage;
  lastLogs: string[];
}

export interface CrashReporter {
  readonly name: string;
  /** Deliver the report; must give up by `deadline` (epoch ms). */
  report(report: CrashReport, deadline: number): Promise<unknown> | unknown;
}

/**
 * Writes log/crash/crash-<time>-<pid>.json (mode 0640) and keeps the newest `keep` reports (50 by
 * default, SLIPWAY_CRASH_KEEP): a crash loop under a service manager that restarts the release
 * again and again must not fill the disk. The logs are bounded by rotation; the reports by this.
 */
export class FileReporter implements CrashReporter {
  readonly name = 'file';
  lastFile: string | undefined;
  constructor(
    readonly dir: string,
    readonly keep = 50,
  ) {}
  report(r: CrashReport): string {
    mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, `crash-${r.at.replace(/[:.]/g, '-')}-${r.pid}.json`);
    writeFileSync(file, JSON.stringify(r, null, 2) + '\n', { mode: 0o640 });
    this.lastFile = file;
    this.prune();
    return file;
  }
  /** Remove the oldest reports beyond `keep` (their names sort by time). Never fails the crash path. */
  private prune(): void {
    try {
      const names = readdirSync(this.dir).filter((n) => n.startsWith('crash-') && n.endsWith('.json')).sort();
      for (const n of names.slice(0, Math.max(0, names.length - this.keep))) unlinkSync(path.join(this.dir, n));
    } catch {
      // a report that is gone already, or a directory we cannot list: keep crashing cleanly
    }
  }
}

export interface WebhookOptions {
  retries?: number;
  backoffMs?: number;
  headers?: Record<string, string>;
}

/** POSTs the report as JSON; retries on network errors and 5xx/429 with exponential backoff. */
export class WebhookReporter implements CrashReporter {
  readonly name = 'webhook';
  attempts = 0;
  constructor(
    readonly url: string,
    readonly opts: WebhookOptions = {},
  ) {}
  async report(r: CrashReport, deadline: number): Promise<boolean> {
    const retries = this.opts.retries ?? 3;
    let wait = this.opts.backoffMs ?? 100;
    const body = JSON.stringify(r);
    for (let attempt = 0; attempt <= retries; attempt++) {
      const left = deadline - Date.now();
      if (left <= 10) return false;
      this.attempts++;
      try {
        const res = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json', ...this.opts.headers }, body, signal: AbortSignal.timeout(left) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        if (res.status < 500 && res.status !== 429) return false; // the receiver refuses it: retrying cannot help
      } catch {
        // network error or timeout: retry
      }
      if (Date.now() + wait >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait *= 2;
    }
    return false;
  }
}

export function buildReport(kind: CrashReport['kind'], err: unknown, info: { name: string; version: string; lastLogs: string[] }): CrashReport {
  const e = err instanceof Error ? err : new Error(`non-error thrown: ${safeString(err)}`);
  return {
    at: new Date().toISOString(),
    kind,
    error: { name: e.name, message: scrub(e.message), stack: e.stack ? scrub(e.stack) : undefined, code: (e as NodeJS.ErrnoException).code },
    release: { name: info.name, version: info.version },
    node: process.version,
    pid: process.pid,
    worker: process.env.SLIPWAY_WORKER_ID,
    uptime_s: Math.round(process.uptime() * 10) / 10,
    memory: process.memoryUsage(),
    lastLogs: info.lastLogs,
  };
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export interface CrashOptions {
  name: string;
  version: string;
  reporters: CrashReporter[];
  /** Give reporters at most this long before exiting (default 2000 ms). */
  deadlineMs?: number;
  exitCode?: number;
  log?: { fatal(obj: object, msg: string): void; recentLines(): string[]; flushSync(): void };
  /** Last words to the supervisor (e.g. an IPC message); awaited within the deadline. */
  notify?: (report: CrashReport, file: string | undefined) => Promise<unknown> | unknown;
}

let installed = false;

/** Install the process-wide handlers once. The process exits after reporting. */
export function installCrashHandlers(opts: CrashOptions): void {
  if (installed) return;
  installed = true;
  let crashing = false;
  const onCrash = (kind: CrashReport['kind']) => (err: unknown) => {
    if (crashing) return; // a second error while reporting the first: the first one wins
    crashing = true;
    const deadline = Date.now() + (opts.deadlineMs ?? 2000);
    const hard = setTimeout(() => process.exit(opts.exitCode ?? 70), opts.deadlineMs ?? 2000);
    hard.unref();
    let report: CrashReport;
    let file: string | undefined;
    try {
      opts.log?.fatal({ err, kind }, kind === 'uncaughtException' ? 'uncaught exception: crashing' : 'unhandled rejection: crashing');
      opts.log?.flushSync();
      report = buildReport(kind, err, { name: opts.name, version: opts.version, lastLogs: opts.log?.recentLines() ?? [] });
      for (const r of opts.reporters) {
        if (r instanceof FileReporter) {
          try {
            file = r.report(report);
          } catch (e) {
            process.stderr.write(`crash report not written: ${(e as Error).message}\n`);
          }
        }
      }
    } catch {
      process.exit(opts.exitCode ?? 70);
    }
    const slow = opts.reporters.filter((r) => !(r instanceof FileReporter)).map((r) => Promise.resolve().then(() => r.report(report, deadline)).catch(() => undefined));
    if (opts.notify) slow.push(Promise.resolve().then(() => opts.notify!(report, file)).catch(() => undefined));
    void Promise.all(slow).then(() => process.exit(opts.exitCode ?? 70));
  };
  process.on('uncaughtException', onCrash('uncaughtException'));
  process.on('unhandledRejection', onCrash('unhandledRejection'));
}

export interface CrashSummary {
  file: string;
  at: string;
  pid: number;
  release: string;
  kind: string;
  error: string;
}

/** Reports in a crash directory, newest last (for `bin/APP crashes`). */
export function listCrashes(dir: string): CrashSummary[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('crash-') && n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: CrashSummary[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    try {
      const r = JSON.parse(readFileSync(file, 'utf8')) as CrashReport;
      out.push({ file: n, at: r.at, pid: r.pid, release: r.release?.version ?? '?', kind: r.kind, error: `${r.error?.name ?? 'Error'}: ${r.error?.message ?? ''}`.split('\n')[0]! });
    } catch {
      out.push({ file: n, at: new Date(statSync(file).mtimeMs).toISOString(), pid: 0, release: '?', kind: 'unreadable', error: 'unreadable report' });
    }
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}
