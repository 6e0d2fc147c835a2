// The release configuration: the "slipway" key of the app's package.json (mix.exs's releases:).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../runtime/env.ts';
import type { ReleaseSettings } from '../release/layout.ts';

const duration = z.string().refine((s) => {
  try {
    parseDuration(s);
    return true;
  } catch {
    return false;
  }
}, 'expected a duration like 500ms, 30s or 2m');

export const ReleaseConfigSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _, starting with a letter'),
    entry: z.string().default('src/app.ts'),
    runtimeConfig: z.string().optional(),
    port: z.number().int().min(0).max(65535).default(4000),
    host: z.string().default('0.0.0.0'),
    workers: z.number().int().min(1).max(256).default(1),
    stopTimeout: duration.default('30s'),
    drainDelay: duration.default('0s'),
    readyTimeout: duration.default('30s'),
    heartTimeout: duration.default('10s'),
    bakePeriod: duration.default('30s'),
    maxRestarts: z.number().int().min(0).default(3),
    maxSeconds: z.number().int().min(1).default(5),
    keepReleases: z.number().int().min(1).default(5),
    logMaxBytes: z.number().int().min(1024).default(10 * 1024 * 1024),
    logGenerations: z.number().int().min(1).max(100).default(5),
    healthPath: z.string().startsWith('/').default('/health'),
    readyPath: z.string().startsWith('/').default('/ready'),
    // --enable-source-maps maps stack traces to the sources but parses every .map at boot
    // (about 180 ms here for the example); the bundles are unminified, so traces stay readable.
    nodeFlags: z.array(z.string()).default([]),
    includeNode: z.boolean().default(false),
    external: z.array(z.string()).default([]),
    optionalExternal: z.array(z.string()).default([]),
    /** Directory whose files are copied over releases/VSN (e.g. an env.sh). */
    overlay: z.string().optional(),
    /** systemd / container settings used by `slipway gen`. */
    user: z.string().default('orders'),
    image: z.string().optional(),
  })
  .strict();

export type ReleaseConfig = z.infer<typeof ReleaseConfigSchema>;

export interface AppProject {
  dir: string;
  version: string;
  config: ReleaseConfig;
}

export class BuildError extends Error {}

export function loadProject(dir: string): AppProject {
  const pkgFile = path.join(dir, 'package.json');
  let pkg: { name?: string; version?: string; slipway?: unknown };
  try {
    pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  } catch (err) {
    throw new BuildError(`${pkgFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (run slipway in the app directory)' : (err as Error).message}`);
  }
  const raw = pkg.slipway ?? { name: pkg.name };
  const parsed = ReleaseConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BuildError(`${pkgFile}: slipway.${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return { dir, version: pkg.version ?? '0.0.0', config: parsed.data };
}

export function settingsOf(c: ReleaseConfig): ReleaseSettings {
  return {
    name: c.name,
    port: c.port,
    host: c.host,
    workers: c.workers,
    stopTimeout: c.stopTimeout,
    drainDelay: c.drainDelay,
    readyTimeout: c.readyTimeout,
    heartTimeout: c.heartTimeout,
    bakePeriod: c.bakePeriod,
    maxRestarts: c.maxRestarts,
    maxSeconds: c.maxSeconds,
    keepReleases: c.keepReleases,
    logMaxBytes: c.logMaxBytes,
    logGenerations: c.logGenerations,
    healthPath: c.healthPath,
    readyPath: c.readyPath,
    nodeFlags: c.nodeFlags,
    includeNode: c.includeNode,
  };
}
