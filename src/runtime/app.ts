// What an application gives Slipway: a boot function that builds its server without binding a
// port (the supervisor owns the socket), the objects it wants in scope for rpc/eval/remote, and
// a migrate hook for the migration gate.
import type { Server } from 'node:http';
import type { Env } from './env.ts';
import type { Health } from './health.ts';
import type { Logger } from './log.ts';

export type RunMode = 'worker' | 'eval' | 'migrate' | 'standalone';

export interface ReleaseInfo {
  name: string;
  version: string;
  /** Build environment (`--env`), e.g. "prod". */
  env: string;
  /** Release root directory, when running from a built release. */
  root: string | undefined;
  /** Data that outlives releases: `<root>/var`, or `./var` outside a release. */
  varDir: string;
}

export interface AppContext<C> {
  config: C;
  env: Env;
  release: ReleaseInfo;
  health: Health;
  log: Logger;
  mode: RunMode;
  /** Run on shutdown after the last connection is gone (close pools, flush). Reverse order. */
  onShutdown(name: string, fn: () => unknown): void;
}

export interface MigrationReport {
  applied: string[];
  pending: string[];
}

export interface AppInstance {
  /** An http.Server that is not listening yet. */
  server: Server;
  /** Called once before the server starts accepting (e.g. `fastify.ready()`). */
  ready?: () => Promise<unknown> | unknown;
  /** The migration gate: apply pending migrations, throw on failure. */
  migrate?: () => Promise<MigrationReport>;
  /** Objects in scope for `rpc`, `eval` and `remote`, e.g. { Repo, Orders }. */
  scope?: Record<string, unknown>;
}

export interface AppDefinition<C> {
  boot(ctx: AppContext<C>): Promise<AppInstance> | AppInstance;
  /** Run migrations when a worker boots (single-host default). The upgrade gate runs them anyway. */
  migrateOnBoot?: boolean;
}

export function defineApp<C>(def: AppDefinition<C>): AppDefinition<C> {
  return def;
}

/** For Fastify apps: `return fromFastify(app, { scope })`. */
export function fromFastify(app: { server: Server; ready(): PromiseLike<unknown> }, extra: Omit<AppInstance, 'server' | 'ready'> = {}): AppInstance {
  return { server: app.server, ready: () => app.ready(), ...extra };
}
