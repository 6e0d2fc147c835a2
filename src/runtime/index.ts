// slipway/runtime — what applications import.
export { createEnv, defineConfig, parseDuration, ConfigError, type Env, type RuntimeConfig, type UrlOptions } from './env.ts';
export { Health, healthPlugin, type ReadinessCheck, type CheckResult, type ReadyReport } from './health.ts';
export { ConnectionTracker } from './drain.ts';
export { createLogger, type Logger } from './log.ts';
export { defineApp, fromFastify, type AppContext, type AppDefinition, type AppInstance, type MigrationReport, type ReleaseInfo, type RunMode } from './app.ts';
export { runApp, evaluate, toJson } from './worker.ts';
