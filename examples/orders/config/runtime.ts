// Evaluated at every boot (and by `bin/orders eval`), never at build time.
import { defineConfig } from 'slipway/runtime';

export interface Config {
  /** null: the embedded default, SQLite in the release's var/ directory. */
  databaseUrl: URL | null;
  dbPoolSize: number;
  unitPriceCents: number;
  /** How long GET /slow sleeps; drills use it to make a release that breaks the latency SLO. */
  slowMs: number;
}

export default defineConfig<Config>((env) => ({
  databaseUrl: env.get('DATABASE_URL') === undefined ? null : env.url('DATABASE_URL', undefined, { schemes: ['postgres', 'postgresql', 'sqlite'] }),
  dbPoolSize: env.int('DB_POOL_SIZE', 10, { min: 1, max: 200 }),
  unitPriceCents: env.int('UNIT_PRICE_CENTS', 500, { min: 0 }),
  slowMs: env.int('SLOW_MS', 2000, { min: 0 }),
}));
