// Deliberate faults, switched on by environment variables (usually through a release overlay's
// env.sh), so that drills and tests can build releases that misbehave in known ways.
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { Health, Logger } from 'slipway/runtime';
import type { Db } from './db.ts';

export function registerFaults(app: FastifyInstance, { health, log, db, slowMs }: { health: Health; log: Logger; db: Db; slowMs: number }): void {
  // GET /slow: a route that takes its time (graceful-shutdown and SLO tests).
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, slowMs));
    return { slept_ms: slowMs };
  });
  // GET /hang: never answers (stop-timeout tests).
  app.get('/hang', () => new Promise(() => undefined));

  // GET /fault/bad-query: a query that fails (tracing tests: its span ends with the error).
  if (process.env.ORDERS_FAULT_BAD_QUERY) app.get('/fault/bad-query', async () => (await sql`SELECT * FROM no_such_table`.execute(db)).rows);

  if (process.env.ORDERS_FAULT_BOOT_THROW) throw new Error('ORDERS_FAULT_BOOT_THROW: boot failure on purpose');
  if (process.env.ORDERS_FAULT_NEVER_READY) health.check('fault', () => Promise.reject(new Error('ORDERS_FAULT_NEVER_READY is set')));
  const crashAfter = Number(process.env.ORDERS_FAULT_CRASH_AFTER_MS ?? 0);
  if (crashAfter > 0) {
    health.onChange((r) => {
      if (r.state !== 'ready') return;
      setTimeout(() => {
        log.error({ crashAfter }, 'ORDERS_FAULT_CRASH_AFTER_MS: crashing on purpose');
        process.exit(70);
      }, crashAfter).unref();
    });
  }
  const latency = Number(process.env.ORDERS_FAULT_LATENCY_MS ?? 0);
  if (latency > 0) app.addHook('onRequest', async () => void (await new Promise((r) => setTimeout(r, latency))));
}
