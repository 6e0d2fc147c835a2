// Tracing with the OpenTelemetry API. Always: W3C traceparent accepted, the trace id in every log
// line of the request, `traceHeaders()` for outgoing calls. Export (OTLP via the OTel Node SDK)
// only when the standard variables ask for it: OTEL_TRACES_EXPORTER=otlp|console, or
// OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT set with OTEL_TRACES_EXPORTER unset; never with
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. With export off no span objects are made.
// OTel's own messages (an export that failed, an exporter name it does not know) become log lines
// of the app's log, at the level OTEL_LOG_LEVEL asks (warn by default).
import type { IncomingMessage } from 'node:http';
import { DiagLogLevel, SpanKind, SpanStatusCode, context, diag, propagation, trace, type DiagLogger, type Span, type Tracer } from '@opentelemetry/api';
import type { RequestTracer } from './context.ts';

const EXPORTERS = ['otlp', 'console', 'zipkin', 'none'];

function tracesExporters(env: NodeJS.ProcessEnv): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
}

export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = tracesExporters(env);
  if (exporters.length) return !exporters.includes('none') && exporters.some((e) => EXPORTERS.includes(e));
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Where OTel's messages go: the app's logger (pino's methods). */
export type TracingLog = Record<'error' | 'warn' | 'info' | 'debug' | 'trace', (fields: object, msg: string) => void>;

/** A collector that is down is news once a while, not at every batch: warnings and errors at most this often. */
const REPEAT_MS = 60_000;

/** OTel's diagnostics as log lines ("opentelemetry: …"), repeated warnings and errors held back (counted in `held_back`). */
function diagToLog(log: TracingLog): DiagLogger {
  let lastLoud = -Infinity;
  let heldBack = 0;
  const to =
    (level: keyof TracingLog) =>
    (message: string, ...args: unknown[]): void => {
      if (level === 'warn' || level === 'error') {
        const now = Date.now();
        if (now - lastLoud < REPEAT_MS) return void heldBack++;
        lastLoud = now;
      }
      const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      log[level]({ component: 'opentelemetry', ...(detail ? { detail } : {}), ...(heldBack ? { held_back: heldBack } : {}) }, `opentelemetry: ${message}`);
      if (level === 'warn' || level === 'error') heldBack = 0;
    };
  return { error: to('error'), warn: to('warn'), info: to('info'), debug: to('debug'), verbose: to('trace') };
}

function diagLevel(raw: string | undefined): DiagLogLevel {
  const levels: Record<string, DiagLogLevel> = { none: DiagLogLevel.NONE, error: DiagLogLevel.ERROR, warn: DiagLogLevel.WARN, info: DiagLogLevel.INFO, debug: DiagLogLevel.DEBUG, verbose: DiagLogLevel.VERBOSE, all: DiagLogLevel.ALL };
  return levels[(raw ?? '').trim().toLowerCase()] ?? DiagLogLevel.WARN;
}

let tracer: Tracer | undefined;
let shutdownFn: (() => Promise<void>) | undefined;

export interface TracingInfo {
  name: string;
  version: string;
  log?: TracingLog;
}

/** Start the OTel Node SDK when asked to (see above). Returns a request tracer, or undefined. */
export async function initTracing(info: TracingInfo, env: NodeJS.ProcessEnv = process.env): Promise<RequestTracer | undefined> {
  const unknown = tracesExporters(env).filter((e) => !EXPORTERS.includes(e));
  if (unknown.length) info.log?.warn({ component: 'opentelemetry', OTEL_TRACES_EXPORTER: env.OTEL_TRACES_EXPORTER }, `OTEL_TRACES_EXPORTER: no exporter named ${unknown.map((e) => JSON.stringify(e)).join(', ')} (${EXPORTERS.join(', ')})${tracingRequested(env) ? '' : '; traces are not exported'}`);
  if (!tracingRequested(env)) return undefined;
  // Only traces are ours to turn on; metrics and logs exporters stay off unless asked for.
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  if (!env.OTEL_TRACES_EXPORTER) env.OTEL_TRACES_EXPORTER = 'otlp';
  // Loaded only now (a lazy chunk of the release bundle). These are CommonJS packages: in a
  // split ESM bundle their exports may sit on `default`.
  // sdk-node re-exports core and resources: no undeclared dependency on them.
  const { NodeSDK, core, resources } = cjs(await import('@opentelemetry/sdk-node'));
  const { resourceFromAttributes } = resources;
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? info.name,
    resource: resourceFromAttributes({ 'service.version': info.version, 'service.instance.id': `${process.pid}` }),
    instrumentations: [],
  });
  // After the SDK, which sets a console logger of its own when OTEL_LOG_LEVEL is set.
  if (info.log) {
    diag.setLogger(diagToLog(info.log), { logLevel: diagLevel(env.OTEL_LOG_LEVEL), suppressOverrideMessage: true });
    // Failed exports come here; the default handler would log the error as a JSON string.
    core.setGlobalErrorHandler((err: unknown) => diag.error(err instanceof Error ? err.message : String(err)));
  }
  sdk.start();
  shutdownFn = () => sdk.shutdown();
  tracer = trace.getTracer('slipway', info.version);
  return requestTracer(tracer);
}

function cjs<T extends object>(mod: T): T {
  return 'default' in mod && mod.default && typeof mod.default === 'object' ? { ...(mod.default as T), ...mod } : mod;
}

/** Flush and stop the exporter (worker shutdown). */
export async function shutdownTracing(): Promise<void> {
  const fn = shutdownFn;
  shutdownFn = undefined;
  await fn?.().catch(() => undefined);
}

export function tracingEnabled(): boolean {
  return tracer !== undefined;
}

function requestTracer(t: Tracer): RequestTracer {
  return {
    start(req: IncomingMessage) {
      const parent = propagation.extract(context.active(), req.headers);
      const method = req.method ?? 'GET';
      const span = t.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': (req.url ?? '/').split('?')[0] } }, parent);
      const active = trace.setSpan(parent, span);
      const sc = span.spanContext();
      return {
        traceId: sc.traceId,
        spanId: sc.spanId,
        flags: sc.traceFlags & 1 ? '01' : '00',
        run: <T>(fn: () => T): T => context.with(active, fn),
        end(status: number, route: string) {
          span.updateName(`${method} ${route}`);
          span.setAttribute('http.route', route);
          span.setAttribute('http.response.status_code', status);
          if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        },
      };
    },
  };
}

/**
 * A child span around some work in the current request (e.g. a database query), when export is
 * on; otherwise `fn` runs as is. `await withSpan('db.query', { 'db.system': 'sqlite' }, () => q)`.
 */
export async function withSpan<T>(name: string, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T> {
  if (!tracer) return fn();
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span: Span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * A Kysely plugin (typed structurally) that makes one CLIENT span per query, named after the
 * operation and table: `db.withPlugin(queries)` with `const queries = queryTracing('sqlite')`.
 * Kysely tells plugins about results but not about failures, so pass `queries.log` as the Kysely
 * instance's `log` option too: a failed query's span then ends with the error instead of never.
 * Costs nothing when export is off.
 */
export function queryTracing(system: string) {
  const open = new WeakMap<object, Span>();
  type Node = { kind: string; from?: { froms?: Array<{ table?: { identifier?: { name?: string } } }> }; into?: { table?: { identifier?: { name?: string } } }; table?: { table?: { identifier?: { name?: string } } } };
  return {
    transformQuery<N extends { readonly kind: string }>(args: { node: N; queryId: object }): N {
      if (tracer) {
        const node = args.node as unknown as Node;
        const op = node.kind.replace(/(Query)?Node$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
        const table = node.from?.froms?.[0]?.table?.identifier?.name ?? node.into?.table?.identifier?.name ?? node.table?.table?.identifier?.name;
        const span = tracer.startSpan(table ? `${op} ${table}` : op, { kind: SpanKind.CLIENT, attributes: { 'db.system': system, 'db.operation.name': op, ...(table ? { 'db.collection.name': table } : {}) } });
        open.set(args.queryId, span);
      }
      return args.node;
    },
    async transformResult<R>(args: { result: R; queryId: object }): Promise<R> {
      const span = open.get(args.queryId);
      if (span) {
        open.delete(args.queryId);
        span.end();
      }
      return args.result;
    },
    /** Kysely's `log` option: ends a failed query's span with its error. */
    log(event: { level: string; error?: unknown; query: { queryId: object } }): void {
      if (event.level !== 'error') return;
      const span = open.get(event.query.queryId);
      if (!span) return;
      open.delete(event.query.queryId);
      const err = event.error instanceof Error ? event.error : new Error(String(event.error));
      span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
      span.end();
    },
  };
}
