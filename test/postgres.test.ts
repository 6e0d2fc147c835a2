// The orders example against a real PostgreSQL 15 (its own throwaway cluster): end to end,
// readiness follows the database while liveness does not, migrations through bin/orders eval,
// and the upgrade's migration gate, including a failing migration that changes nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildOrders, deploy, freePort, runCleanups, tempDir, waitFor, type Deployed } from './helpers/release.ts';
import { pgAvailable, startPostgres, type Postgres } from './helpers/postgres.ts';
import type { BuildResult } from '../src/build/index.ts';

after(runCleanups);

const skip = pgAvailable() ? false : 'PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin); .ci/run installs it';
let pg: Postgres;
let app: Deployed;
const builds: Record<string, BuildResult> = {};

function overlay(env: Record<string, string>): string {
  const dir = tempDir('slipway-overlay-');
  writeFileSync(path.join(dir, 'env.sh'), '#!/bin/sh\n' + Object.entries(env).map(([k, v]) => `export ${k}='${v}'\n`).join(''));
  return dir;
}

const get = async (url: string) => {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: r.status, body: await r.text(), release: r.headers.get('x-release') };
};

before(async () => {
  if (skip) return;
  pg = await startPostgres();
  builds['1.0.0'] = await buildOrders({ version: '1.0.0' });
  // A good migration behind a broken one: PostgreSQL runs both in one transaction, so neither lands.
  builds['1.1.0'] = await buildOrders({
    version: '1.1.0',
    overlay: overlay({ ORDERS_EXTRA_MIGRATIONS: '{"002_add_note":"ALTER TABLE orders ADD COLUMN note text","003_broken":"SELECT broken syntax"}' }),
  });
  builds['1.2.0'] = await buildOrders({ version: '1.2.0', overlay: overlay({ ORDERS_EXTRA_MIGRATIONS: '{"002_add_note":"ALTER TABLE orders ADD COLUMN note text"}' }) });
  app = await deploy(builds['1.0.0']!, { DATABASE_URL: pg.url, PORT: String(await freePort()), SLIPWAY_BAKE_PERIOD: '1s' });
});

test('the example works end to end on PostgreSQL', { skip }, async () => {
  const eval1 = await app.run(['eval', 'Release.migrate()']);
  assert.equal(eval1.code, 0, eval1.stderr);
  assert.equal(pg.psql("select count(*) from kysely_migration where name = '001_create_orders'"), '1');
  const d = await app.daemon();
  assert.equal(d.code, 0, d.stderr);
  assert.equal((await get(app.url('/health'))).status, 200);
  assert.equal((await get(app.url('/ready'))).status, 200);
  const created = await fetch(app.url('/orders'), { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'pg-1' }, body: JSON.stringify({ item: 'tea', quantity: 2 }) });
  assert.equal(created.status, 201);
  const order = (await created.json()) as { id: string };
  assert.equal((await get(app.url(`/orders/${order.id}`))).status, 200);
  assert.equal(pg.psql(`select item from orders where id = '${order.id}'`), 'tea');
});

test('PostgreSQL down: /ready 503 within the check interval, /health stays 200; back up: /ready 200', { skip }, async () => {
  pg.stop();
  const t0 = Date.now();
  await waitFor('/ready 503', async () => (await get(app.url('/ready'))).status === 503, 5000, 100);
  const took = Date.now() - t0;
  assert.ok(took < 3000, `readiness took ${took} ms to notice (check interval 1 s + 1 s timeout)`);
  assert.equal((await get(app.url('/health'))).status, 200);
  const ready = await app.run(['ready', '--quiet']);
  assert.equal(ready.code, 1);
  pg.start();
  await waitFor('/ready 200 again', async () => (await get(app.url('/ready'))).status === 200, 10_000, 100);
  assert.equal((await app.run(['ready', '--quiet'])).code, 0);
});

test('migration gate: a failing migration aborts the upgrade, the old release serves, the schema is unchanged', { skip }, async () => {
  const before = pg.psql("select string_agg(name, ',' order by name) from kysely_migration");
  const inst = await app.run(['install', builds['1.1.0']!.tarball]);
  assert.equal(inst.code, 0, inst.stderr);
  const up = await app.run(['upgrade', '1.1.0']);
  assert.notEqual(up.code, 0);
  assert.match(up.stderr, /migration/i);
  assert.equal((await get(app.url('/hello'))).release, '1.0.0');
  assert.equal((await get(app.url('/ready'))).status, 200);
  assert.equal(pg.psql("select string_agg(name, ',' order by name) from kysely_migration"), before);
  assert.equal(pg.psql("select count(*) from information_schema.columns where table_name = 'orders' and column_name = 'note'"), '0');
});

test('migration gate: a good migration runs against PostgreSQL before the switch', { skip }, async () => {
  assert.equal((await app.run(['install', builds['1.2.0']!.tarball])).code, 0);
  const up = await app.run(['upgrade', '1.2.0']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal((await get(app.url('/hello'))).release, '1.2.0');
  assert.equal(pg.psql("select count(*) from information_schema.columns where table_name = 'orders' and column_name = 'note'"), '1');
  assert.equal(pg.psql("select count(*) from kysely_migration where name = '002_add_note'"), '1');
  assert.equal((await get(app.url('/ready'))).status, 200);
});
