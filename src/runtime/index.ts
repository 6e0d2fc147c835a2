// slipway/runtime — what applications import.
export { createEnv, defineConfig, parseDuration, ConfigError, type Env, type RuntimeConfig, type UrlOptions } from './env.ts';
export { Health, healthPlugin, type ReadinessCheck, type CheckResult, type ReadyReport } from './health.ts';
export { ConnectionTracker } from './drain.ts';
export { createLogger, type Logger } from './log.ts';
export { defineApp, fromFastify, type AppContext, type AppDefinition, type AppInstance, type MigrationReport, type ReleaseInfo, type RunMode } from './app.ts';
export { runApp, evaluate, toJson } from './worker.ts';
export { bindRequest, currentRequest, currentRequestId, setRoute, traceHeaders, requestContextPlugin, type RequestStore } from './context.ts';
export { flags, FlagStore, FileFlagProvider, type FlagRule } from './flags.ts';
export { withSpan, queryTracing, tracingEnabled } from './tracing.ts';
export { FileReporter, WebhookReporter, installCrashHandlers, type CrashReport, type CrashReporter } from './crash.ts';
export { WorkerMetrics } from './metrics.ts';
