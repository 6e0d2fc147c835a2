// The orders service: Fastify + Kysely, run and supervised by Slipway.
import { createHash, randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import { currentRequestId, defineApp, flags, fromFastify, healthPlugin, queryTracing, requestContextPlugin } from 'slipway/runtime';
import type { Config } from '../config/runtime.ts';
import { migrate, openDatabase, pendingMigrations, ping } from './db.ts';
import { registerFaults } from './faults.ts';

interface OrderBody {
  item: string;
  quantity: number;
}

export default defineApp<Config>({
  migrateOnBoot: true,
  async boot({ config, release, health, log, onShutdown }) {
    // One span per query when OTel export is on (OTEL_* variables); nothing otherwise. Kysely's log
    // hook is how a failed query's span learns of the error.
    const queries = queryTracing(config.databaseUrl?.protocol.startsWith('postgres') ? 'postgresql' : 'sqlite');
    const opened = openDatabase(config.databaseUrl, release.varDir, config.dbPoolSize, queries.log);
    const { kind, describe } = opened;
    const db = opened.db.withPlugin(queries);
    onShutdown('database', () => db.destroy());

    health.check('database', () => ping(db), 1000);
    health.check('migrations', async () => {
      const pending = await pendingMigrations(db);
      if (pending.length) throw new Error(`${pending.length} pending: ${pending.join(', ')}`);
    });

    const app = Fastify({ loggerInstance: log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 64 * 1024, genReqId: () => currentRequestId() });
    await app.register(requestContextPlugin());
    // A callback hook, not an async one: nothing here awaits, and an async hook makes two promises
    // on every request (each one followed by the request context's promise hooks).
    app.addHook('onRequest', (_req, reply, done) => {
      reply.header('x-release', release.version);
      done();
    });
    await app.register(healthPlugin(health));
    registerFaults(app, { health, log, db, slowMs: config.slowMs });

    app.get('/hello', async () => ({ hello: 'world', release: release.version }));

    app.post<{ Body: OrderBody }>(
      '/orders',
      {
        schema: {
          body: {
            type: 'object',
            required: ['item', 'quantity'],
            additionalProperties: false,
            properties: { item: { type: 'string', minLength: 1, maxLength: 200 }, quantity: { type: 'integer', minimum: 1, maximum: 10000 } },
          },
        },
      },
      async (req, reply) => {
        const key = req.headers['idempotency-key'];
        const idempotencyKey = typeof key === 'string' && key.length > 0 ? key.slice(0, 200) : null;
        const hash = createHash('sha256').update(JSON.stringify([req.body.item, req.body.quantity])).digest('hex');
        if (idempotencyKey) {
          const prior = await db.selectFrom('orders').selectAll().where('idempotency_key', '=', idempotencyKey).executeTakeFirst();
          if (prior) return replay(prior.request_hash === hash, prior, reply);
        }
        // Feature flag new_pricing (bin/orders flags set new_pricing on|off|25%|--for CUSTOMER):
        // volume pricing, 10% off from 10 units. Off (the default) is the classic price.
        const customer = req.headers['x-customer-id'];
        const newPricing = flags.enabled('new_pricing', typeof customer === 'string' ? customer : (idempotencyKey ?? undefined));
        reply.header('x-pricing', newPricing ? 'new' : 'classic');
        const order = {
          id: randomUUID(),
          item: req.body.item,
          quantity: req.body.quantity,
          price_cents: newPricing ? volumePrice(req.body.quantity, config.unitPriceCents) : req.body.quantity * config.unitPriceCents,
          idempotency_key: idempotencyKey,
          request_hash: hash,
          release: release.version,
          created_at: new Date().toISOString(),
        };
        try {
          await db.insertInto('orders').values(order).execute();
        } catch (err) {
          // A concurrent retry with the same key won the race: answer with its order.
          if (!idempotencyKey || !isUniqueViolation(err)) throw err;
          const prior = await db.selectFrom('orders').selectAll().where('idempotency_key', '=', idempotencyKey).executeTakeFirstOrThrow();
          return replay(prior.request_hash === hash, prior, reply);
        }
        // After the awaits above: still carries this request's req_id and trace_id.
        log.info({ order_id: order.id, quantity: order.quantity, pricing: newPricing ? 'new' : 'classic' }, 'order created');
        return reply.code(201).send(publicOrder(order));
      },
    );

    app.get<{ Params: { id: string } }>('/orders/:id', async (req, reply) => {
      const order = await db.selectFrom('orders').selectAll().where('id', '=', req.params.id).executeTakeFirst();
      if (!order) return reply.code(404).send({ error: 'not_found', id: req.params.id });
      return publicOrder(order);
    });

    app.get<{ Querystring: { limit?: string; idempotency_key?: string } }>('/orders', async (req, reply) => {
      const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return reply.code(400).send({ error: 'bad_request', message: 'limit must be an integer from 1 to 1000' });
      let q = db.selectFrom('orders').selectAll().orderBy('created_at', 'desc').limit(limit);
      if (req.query.idempotency_key) q = q.where('idempotency_key', '=', req.query.idempotency_key);
      const rows = await q.execute();
      const total = await db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return { orders: rows.map(publicOrder), total: Number(total.n) };
    });

    const Orders = {
      count: async () => Number((await db.selectFrom('orders').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n),
      get: (id: string) => db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst(),
    };
    log.info({ database: describe }, 'booted');
    return fromFastify(app, { migrate: () => migrate(db), scope: { Repo: db, Orders, Db: { kind, describe } } });
  },
});

/** The new pricing path behind the new_pricing flag: 10% off from 10 units. */
function volumePrice(quantity: number, unit: number): number {
  return quantity >= 10 ? Math.round(quantity * unit * 0.9) : quantity * unit;
}

function publicOrder(o: { id: string; item: string; quantity: number; price_cents: number; idempotency_key: string | null; release: string; created_at: string }) {
  return { id: o.id, item: o.item, quantity: o.quantity, price_cents: o.price_cents, idempotency_key: o.idempotency_key, release: o.release, created_at: o.created_at };
}

function replay(sameRequest: boolean, prior: Parameters<typeof publicOrder>[0], reply: { code(n: number): { send(b: unknown): unknown } }) {
  if (!sameRequest) return reply.code(422).send({ error: 'idempotency_key_reused', message: 'Idempotency-Key was already used with a different request body' });
  return reply.code(201).send(publicOrder(prior));
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(e.message ?? '');
}
