// The process side of a release: boots the app in one of four modes.
//   worker      forked by the supervisor: listens on the inherited socket, reports over IPC
//   eval        `bin/APP eval EXPR`: app loaded and configured, no port bound
//   migrate     the migration gate: boot, run migrations, exit
//   standalone  plain `node app.mjs`: binds PORT itself (development, benchmarks)
import { mkdirSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { FromWorker, ToWorker, FatalKind } from '../protocol.ts';
import { LOG_LEVELS, REQUEST_LOG_MODES, WorkerEnv, type LogLevel, type RequestLogMode } from '../protocol.ts';
import { ConfigError, createEnv, type RuntimeConfig } from './env.ts';
import { Health } from './health.ts';
import { ConnectionTracker } from './drain.ts';
import { createLogger, type LogFile, type Logger } from './log.ts';
import { DEFAULT_REQUEST_LOG_RATE, instrumentServer, type InstrumentedServer, type RequestLogPolicy } from './context.ts';
import { CONTEXT_MODES, type ContextMode } from './request-storage.ts';
import { FileReporter, WebhookReporter, installCrashHandlers, type CrashReporter } from './crash.ts';
import { MetricsEndpoint, WorkerMetrics } from './metrics.ts';
import { flags, initFlags } from './flags.ts';
import { initTracing, shutdownTracing } from './tracing.ts';
import type { AppContext, AppDefinition, AppInstance, ReleaseInfo, RunMode } from './app.ts';
import { setTimeout as sleep } from 'node:timers/promises';

declare const __SLIPWAY_BUILD__: { name: string; version: string; env: string } | undefined;

export interface BuildInfo {
  name: string;
  version: string;
  env: string;
}

function buildInfo(): BuildInfo {
  if (typeof __SLIPWAY_BUILD__ !== 'undefined' && __SLIPWAY_BUILD__) return __SLIPWAY_BUILD__;
  return { name: process.env.RELEASE_NAME ?? 'app', version: process.env.RELEASE_VSN ?? '0.0.0-dev', env: process.env.RELEASE_ENV ?? 'dev' };
}

function send(msg: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

/** One line on stderr, the way the supervisor and `daemon` expect a boot failure to read. */
function fatalLine(name: string, message: string): void {
  writeSync(2, `${name}: ${message}\n`);
}

async function failBoot(info: BuildInfo, kind: FatalKind, message: string): Promise<never> {
  fatalLine(info.name, message);
  await send({ t: 'fatal', kind, message });
  process.exit(kind === 'config' ? 78 : 1); // 78 = EX_CONFIG
}

/** Entry point used by the generated release bundle. */
export async function runApp<C>(def: AppDefinition<C>, configFn: RuntimeConfig<C> | undefined): Promise<void> {
  const info = buildInfo();
  const mode = (process.env[WorkerEnv.mode] as RunMode | undefined) ?? (process.send ? 'worker' : 'standalone');
  const root = process.env.RELEASE_ROOT;
  const release: ReleaseInfo = {
    name: info.name,
    version: process.env.RELEASE_VSN ?? info.version,
    env: info.env,
    root,
    varDir: process.env.RELEASE_VAR ?? (root ? path.join(root, 'var') : path.resolve('var')),
  };
  mkdirSync(release.varDir, { recursive: true });

  const env = createEnv();
  let config: C;
  try {
    config = configFn ? configFn(env) : (undefined as C);
  } catch (err) {
    if (err instanceof ConfigError) return failBoot(info, 'config', err.message);
    return failBoot(info, 'config', `config/runtime.ts failed: ${(err as Error).message}`);
  }
  const oneShot = mode === 'eval' || mode === 'migrate';
  // Slipway's own settings, checked before anything boots: a bad one is one config line, not a
  // worker that fails after the app has booted (and is restarted until the supervisor gives up).
  let logLevel: LogLevel;
  let metricsPath: string;
  let keepAliveMs: number;
  let stopTimeoutMs: number;
  let drainDelayMs: number;
  let contextMode: ContextMode;
  let metricsOn: boolean;
  let metricsGc: boolean;
  let requestLog: boolean | RequestLogPolicy;
  let policyFor: (mode: RequestLogMode) => boolean | RequestLogPolicy;
  let crashKeep: number;
  let crashWebhook: { url: string; authorization?: string } | undefined;
  try {
    // eval/migrate print their result on stdout: their logs go to stderr, warnings and up unless LOG_LEVEL says.
    logLevel = env.oneOf(env.get(WorkerEnv.logLevel) !== undefined ? WorkerEnv.logLevel : 'LOG_LEVEL', LOG_LEVELS, oneShot ? 'warn' : 'info');
    metricsPath = env.get('SLIPWAY_METRICS_PATH') ?? '/metrics';
    if (!metricsPath.startsWith('/')) throw new ConfigError('SLIPWAY_METRICS_PATH', `expected a path that starts with /, got ${JSON.stringify(metricsPath)}`);
    keepAliveMs = env.duration('KEEP_ALIVE_TIMEOUT', 5000);
    stopTimeoutMs = env.duration(WorkerEnv.stopTimeoutMs, 30_000);
    drainDelayMs = env.duration(WorkerEnv.drainDelayMs, 0);
    contextMode = env.oneOf('SLIPWAY_REQUEST_CONTEXT', CONTEXT_MODES, 'promises');
    metricsOn = env.oneOf('SLIPWAY_METRICS', ['on', 'off'], 'on') === 'on';
    metricsGc = env.oneOf('SLIPWAY_METRICS_GC', ['on', 'off'], 'off') === 'on';
    // on: a line for every error, aborted or slow request, and for up to SLIPWAY_REQUEST_LOG_RATE
    // others a second (RequestLogPolicy); all: every request; errors: the first kind only.
    const lines = env.oneOf(env.get(WorkerEnv.requestLog) !== undefined ? WorkerEnv.requestLog : 'SLIPWAY_REQUEST_LOG', REQUEST_LOG_MODES, 'on');
    const rate = env.int('SLIPWAY_REQUEST_LOG_RATE', DEFAULT_REQUEST_LOG_RATE, { min: 1 });
    const slowMs = env.duration('SLIPWAY_REQUEST_LOG_SLOW', '1s');
    policyFor = (mode) => (mode === 'off' ? false : mode === 'all' ? true : { rate: mode === 'errors' ? 0 : rate, slowMs });
    requestLog = policyFor(lines);
    crashKeep = env.int('SLIPWAY_CRASH_KEEP', 50, { min: 1 });
    // Checked at boot, not found broken at the first crash. Both may come from files (_FILE): a
    // webhook URL often is the token itself.
    if (env.get('SLIPWAY_CRASH_WEBHOOK') !== undefined) {
      const url = env.url('SLIPWAY_CRASH_WEBHOOK', undefined, { schemes: ['http', 'https'] }).href;
      crashWebhook = { url, authorization: env.get('SLIPWAY_CRASH_WEBHOOK_AUTHORIZATION') };
    }
  } catch (err) {
    return failBoot(info, 'config', (err as Error).message);
  }

  const log = createLogger({ name: info.name, version: release.version, level: logLevel, write: oneShot ? (text) => void process.stderr.write(text) : undefined, file: mode === 'worker' ? logFile() : undefined });
  // Production hooks (issue 6): crash reports, feature flags, tracing. See crash.ts, flags.ts, tracing.ts.
  if (mode === 'worker' || mode === 'standalone') {
    const reporters: CrashReporter[] = [new FileReporter(path.join(process.env.RELEASE_LOG ?? path.join(root ?? '.', 'log'), 'crash'), crashKeep)];
    if (crashWebhook) reporters.push(new WebhookReporter(crashWebhook.url, crashWebhook.authorization ? { headers: { authorization: crashWebhook.authorization } } : {}));
    installCrashHandlers({
      name: info.name,
      version: release.version,
      log,
      reporters,
      notify: (r, file) => send({ t: 'fatal', kind: 'crash', message: `${r.error.name}: ${r.error.message}${file ? ` (report: ${root ? path.relative(root, file) : file})` : ''}` }),
    });
  }
  initFlags(release.varDir, undefined, (message) => log.warn({ component: 'flags' }, `flags: ${message}`));
  const tracer = mode === 'worker' || mode === 'standalone' ? await initTracing({ name: info.name, version: release.version, log }) : undefined;
  const health = new Health({ info: { release: release.version } });
  const hooks: Array<{ name: string; fn: () => unknown }> = [{ name: 'tracing', fn: shutdownTracing }];
  const ctx: AppContext<C> = {
    config,
    env,
    release,
    health,
    log,
    mode,
    onShutdown: (name, fn) => void hooks.push({ name, fn }),
  };

  let instance: AppInstance;
  try {
    instance = await def.boot(ctx);
  } catch (err) {
    if (err instanceof ConfigError) return failBoot(info, 'config', err.message);
    return failBoot(info, 'boot', `boot failed: ${(err as Error)?.stack ?? err}`);
  }

  const runHooks = async (budgetMs: number) => {
    const deadline = Date.now() + budgetMs;
    for (const h of [...hooks].reverse()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        log.warn({ hook: h.name }, 'shutdown hook skipped: stop timeout reached');
        continue;
      }
      try {
        await withTimeout(Promise.resolve().then(h.fn), left);
      } catch (err) {
        log.error({ hook: h.name, err }, 'shutdown hook failed');
      }
    }
    await new Promise<void>((resolve) => log.flush(() => resolve()));
  };

  const scope = makeScope(ctx, instance);

  if (oneShot) {
    const expr = mode === 'migrate' ? 'Release.migrate()' : process.env[WorkerEnv.evalExpr] ?? '';
    let code = 0;
    try {
      await instance.ready?.();
      const value = await evaluate(expr, scope);
      if (value !== undefined) process.stdout.write(toJson(value) + '\n');
    } catch (err) {
      fatalLine(info.name, `${mode} failed: ${(err as Error)?.message ?? err}`);
      code = 1;
    }
    await runHooks(5000);
    await send({ t: 'state', state: 'stopped' });
    process.exit(code);
  }

  try {
    await instance.ready?.();
    if (def.migrateOnBoot && instance.migrate) {
      try {
        await instance.migrate();
      } catch (err) {
        return failBoot(info, 'migration', `migration failed: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    return failBoot(info, 'boot', `boot failed: ${(err as Error)?.stack ?? err}`);
  }

  const server = instance.server;
  const tracker = new ConnectionTracker(server);
  const metrics = metricsOn ? new WorkerMetrics({ gc: metricsGc }) : undefined;
  const metricsEndpoint = metrics && new MetricsEndpoint(metrics, mode === 'worker' ? (id) => process.connected && process.send!({ t: 'metrics-request', id } satisfies FromWorker) : undefined);
  let instrumented: InstrumentedServer | undefined;
  if (requestLog || metrics || tracer) {
    instrumented = instrumentServer(server, { log, requestLog, observer: metrics, tracer, context: contextMode, tracker, intercept: metricsEndpoint ? { path: metricsPath, handle: (_req, res) => metricsEndpoint.handle(res) } : undefined });
  }
  server.keepAliveTimeout = keepAliveMs;

  health.onChange((r) => void send({ t: 'state', state: r.state, failing: r.ready ? undefined : health.failing() }));

  let draining = false;
  /** Set while a worker started with holdAccept waits for the switch (start-accepting). */
  let switchCame: (() => void) | undefined;
  const drain = async (reason: string, keepListening = false) => {
    if (draining) return;
    draining = true;
    health.setState('draining');
    log.info({ reason, inFlight: tracker.inFlightCount, connections: tracker.connectionCount }, 'draining');
    const started = Date.now();
    let cut = false;
    const hardStop = setTimeout(() => {
      cut = true;
      const requests = tracker.snapshot();
      for (const r of requests) log.warn({ method: r.method, url: r.url, ageMs: r.ageMs, stopTimeoutMs }, 'request cut by stop timeout');
      void send({ t: 'cut', requests });
      tracker.destroyAll();
    }, stopTimeoutMs);
    tracker.closeAfterResponse();
    // The delay gives load balancers time to see /ready fail before the port stops answering;
    // while the service keeps listening through other workers nobody needs it.
    if (!keepListening) await sleep(drainDelayMs);
    tracker.beginDrain();
    await tracker.whenIdle();
    clearTimeout(hardStop);
    await runHooks(Math.max(1000, stopTimeoutMs - (Date.now() - started)));
    log.info({ ms: Date.now() - started, cut }, 'stopped');
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    health.setState('stopped');
    await send({ t: 'state', state: 'stopped' });
    process.exit(0);
  };
  process.on('SIGTERM', () => void drain('SIGTERM'));
  process.on('SIGINT', () => void drain('SIGINT'));

  if (mode === 'worker') {
    process.on('disconnect', () => void drain('supervisor disconnected'));
    process.on('message', (msg: ToWorker) => void onMessage(msg));
    const beat = Number(process.env[WorkerEnv.heartIntervalMs] ?? 1000);
    setInterval(() => {
      const m = process.memoryUsage();
      void send({ t: 'heartbeat', rss: m.rss, heapUsed: m.heapUsed, inFlight: tracker.inFlightCount });
    }, beat).unref();
  }

  async function onMessage(msg: ToWorker) {
    switch (msg.t) {
      case 'drain':
        return drain(msg.reason, msg.keepListening === true);
      case 'retire':
        tracker.closeAfterResponse();
        return tracker.stopAccepting();
      case 'start-accepting':
        return switchCame?.();
      case 'rpc':
        try {
          const value = await evaluate(msg.expr, scope);
          return send({ t: 'rpc-result', id: msg.id, ok: true, json: value === undefined ? null : toJson(value) });
        } catch (err) {
          return send({ t: 'rpc-result', id: msg.id, ok: false, error: (err as Error)?.message ?? String(err) });
        }
      case 'remote':
        return openRemote(msg, scope, info).then(
          () => send({ t: 'remote-open', id: msg.id, ok: true }),
          (err: Error) => send({ t: 'remote-open', id: msg.id, ok: false, error: err.message }),
        );
      case 'log-level':
        log.level = msg.level;
        return;
      case 'request-log':
        if (instrumented) return instrumented.setRequestLog(policyFor(msg.mode));
        // Nothing follows this worker's requests (request lines, metrics and tracing all off at
        // boot): new workers take the mode (the supervisor passes it on).
        if (msg.mode !== 'off') log.warn({ component: 'request-log' }, `request lines stay off in this worker: it started with request lines, metrics and tracing off; workers started from now on (bin/${info.name} restart) log ${msg.mode}`);
        return;
      case 'log-reopen':
        return log.reopen();
      case 'metrics-collect':
        return send({ t: 'metrics-data', id: msg.id, json: metrics ? await metrics.json() : null });
      case 'metrics-response':
        return metricsEndpoint?.answer(msg.id, msg.text);
    }
  }

  // Readiness: checks must pass once before the worker accepts a connection. A worker that is not
  // ready never calls listen(2) on the shared socket, so it takes no request that a failed or
  // aborted boot could cut; connections go to the ready workers or wait in the backlog.
  for (;;) {
    if (draining) return;
    await health.runChecks();
    if (health.checksPass()) break;
    await sleep(250);
  }
  if (draining) return;

  // Listen: on the socket the supervisor hands us, or on PORT when run as plain node.
  const listen = () =>
    new Promise<void>((resolve) => {
      server.once('error', (err) => void failBoot(info, 'listen', `listen failed: ${err.message}`));
      if (mode === 'worker') {
        const fd = Number(process.env[WorkerEnv.listenFd] ?? 4);
        server.listen({ fd }, resolve);
      } else {
        let port: number;
        try {
          port = env.int('PORT', 4000, { min: 0, max: 65535 });
        } catch (err) {
          void failBoot(info, 'config', (err as Error).message);
          return;
        }
        server.listen({ port, host: env.string('HOST', '0.0.0.0') }, () => {
          log.info({ address: server.address() }, 'listening');
          resolve();
        });
      }
    });

  // A worker started by a release switch is ready before it accepts: it waits for the switch
  // (start-accepting), so that until then the old release alone takes new connections.
  const held = mode === 'worker' && process.env[WorkerEnv.holdAccept] === '1';
  const switched = held ? new Promise<void>((resolve) => (switchCame = resolve)) : undefined;
  if (!held) await listen();
  if (draining) return;
  health.setState('ready');
  health.startLoop();
  log.info({ mode }, held ? 'ready, accepting from the switch on' : 'ready');
  if (switched) {
    await switched;
    if (draining) return;
    await listen();
    log.info({ mode }, 'accepting');
  }
}

function makeScope<C>(ctx: AppContext<C>, instance: AppInstance): Record<string, unknown> {
  const Release = {
    name: ctx.release.name,
    version: ctx.release.version,
    env: ctx.release.env,
    migrate: () => {
      if (!instance.migrate) throw new Error('this app has no migrate hook');
      return instance.migrate();
    },
  };
  return { Health: ctx.health, Release, Config: ctx.config, Log: ctx.log, Flags: flags, ...instance.scope };
}

const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;

/** Evaluate an expression (or, failing that, a statement list) with the app's objects in scope. */
export async function evaluate(expr: string, scope: Record<string, unknown>): Promise<unknown> {
  const names = Object.keys(scope);
  let fn: (...a: unknown[]) => Promise<unknown>;
  try {
    fn = new AsyncFunction(...names, `return (${expr}\n);`);
  } catch {
    fn = new AsyncFunction(...names, expr);
  }
  return await fn(...names.map((n) => scope[n]));
}

export function toJson(value: unknown): string {
  // The objects above the one being written: a reference back to one of them is "[Circular]" (rpc
  // answers with what it can show instead of failing on a back-pointer, as inspect would).
  const ancestors: unknown[] = [];
  return JSON.stringify(
    value,
    function (this: unknown, _k, v: unknown) {
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Map) v = Object.fromEntries(v);
      else if (v instanceof Set) v = [...v];
      else if (v instanceof Error) return { name: v.name, message: v.message };
      if (typeof v !== 'object' || v === null) return v;
      while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
      if (ancestors.includes(v)) return '[Circular]';
      ancestors.push(v);
      return v;
    },
    2,
  ) ?? 'null';
}

async function openRemote(msg: Extract<ToWorker, { t: 'remote' }>, scope: Record<string, unknown>, info: BuildInfo): Promise<void> {
  const server = net.createServer({ allowHalfOpen: false });
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(msg.path, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  const closeTimer = setTimeout(() => server.close(), 10_000).unref();
  server.once('connection', (socket) => {
    clearTimeout(closeTimer);
    server.close();
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onData);
      socket.pause(); // until the REPL (loaded below) reads it
      const given = Buffer.from(buf.slice(0, nl));
      const want = Buffer.from(msg.cookie);
      if (given.length !== want.length || !timingSafeEqual(given, want)) {
        socket.end('error: bad cookie\n');
        return;
      }
      const rest = buf.slice(nl + 1);
      if (rest) socket.unshift(Buffer.from(rest));
      // node:repl loads node:domain, which patches every EventEmitter (about 1.5 µs a request):
      // load it only when someone opens a remote console.
      void import('node:repl').then(({ default: repl }) => {
        const r = repl.start({ prompt: `${info.name}(${process.pid})> `, input: socket, output: socket, terminal: false, useGlobal: false, ignoreUndefined: true });
        Object.assign(r.context, scope);
        r.on('exit', () => socket.end());
        socket.on('error', () => r.close());
      });
    };
    socket.on('data', onData);
  });
}


function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

export type { Logger };

/** Under `daemon` the supervisor lets workers append to the log file themselves (supervisor/logs.ts). */
function logFile(): LogFile | undefined {
  const file = process.env[WorkerEnv.logFile];
  const maxBytes = Number(process.env[WorkerEnv.logMaxBytes]);
  if (!file || !(maxBytes > 0)) return undefined;
  return { path: file, maxBytes, requestRotate: (bytes) => process.connected && process.send!({ t: 'log-full', bytes } satisfies FromWorker) };
}
