// The supervisor's settings: the release's built-in defaults (release.json), overridden at
// runtime by the environment. Bad values fail with one line naming the variable.
import { createEnv, parseDuration } from '../runtime/env.ts';
import type { ReleaseSettings } from '../release/layout.ts';

export interface Settings {
  name: string;
  host: string;
  port: number;
  workers: number;
  stopTimeoutMs: number;
  drainDelayMs: number;
  readyTimeoutMs: number;
  heartTimeoutMs: number;
  heartIntervalMs: number;
  bakePeriodMs: number;
  maxRestarts: number;
  maxSeconds: number;
  keepReleases: number;
  logMaxBytes: number;
  logGenerations: number;
  nodeFlags: string[];
}

export function resolveSettings(base: ReleaseSettings, source: Record<string, string | undefined> = process.env): Settings {
  const env = createEnv(source);
  const heartTimeoutMs = env.duration('SLIPWAY_HEART_TIMEOUT', base.heartTimeout);
  return {
    name: base.name,
    host: env.string('HOST', base.host),
    port: env.int('PORT', base.port, { min: 0, max: 65535 }),
    workers: env.int('SLIPWAY_WORKERS', base.workers, { min: 1, max: 256 }),
    stopTimeoutMs: env.duration('SLIPWAY_STOP_TIMEOUT', base.stopTimeout),
    drainDelayMs: env.duration('SLIPWAY_DRAIN_DELAY', base.drainDelay),
    readyTimeoutMs: env.duration('SLIPWAY_READY_TIMEOUT', base.readyTimeout),
    heartTimeoutMs,
    heartIntervalMs: Math.max(50, Math.min(1000, Math.floor(heartTimeoutMs / 5))),
    bakePeriodMs: env.duration('SLIPWAY_BAKE_PERIOD', base.bakePeriod),
    maxRestarts: env.int('SLIPWAY_MAX_RESTARTS', base.maxRestarts, { min: 0 }),
    maxSeconds: env.int('SLIPWAY_MAX_SECONDS', base.maxSeconds, { min: 1 }),
    keepReleases: env.int('SLIPWAY_KEEP_RELEASES', base.keepReleases, { min: 1 }),
    logMaxBytes: env.int('SLIPWAY_LOG_MAX_BYTES', base.logMaxBytes, { min: 1024 }),
    logGenerations: env.int('SLIPWAY_LOG_GENERATIONS', base.logGenerations, { min: 1, max: 100 }),
    nodeFlags: base.nodeFlags,
  };
}

export { parseDuration };
