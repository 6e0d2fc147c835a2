// The orders example's database on its default, SQLite: several workers boot at once on a fresh
// file and each runs the migrations (migrateOnBoot). They must not race: one migrates, the others
// wait for SQLite's write lock and then find nothing left to do.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';

const dir = mkdtempSync(path.join(tmpdir(), 'slipway-example-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const script = (file: string, at: number) => `
  import { openDatabase, migrate } from ${JSON.stringify(new URL('../examples/orders/src/db.ts', import.meta.url).href)};
  const { db } = openDatabase(new URL('sqlite:${file}'), '.', 1);
  // Start together, once every process is up.
  await new Promise((r) => setTimeout(r, Math.max(0, ${at} - Date.now())));
  try {
    const r = await migrate(db);
    process.stdout.write(JSON.stringify(r.applied));
  } catch (err) {
    process.stdout.write('FAILED ' + err.message);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }`;

function run(file: string, at: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(file, at)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

it('four processes migrating a fresh SQLite file at once: all succeed, the migration is applied once', async () => {
  for (let round = 0; round < 3; round++) {
    const file = path.join(dir, `orders-${round}.db`);
    const at = Date.now() + 3000;
    const results = await Promise.all([run(file, at), run(file, at), run(file, at), run(file, at)]);
    for (const r of results) assert.equal(r.code, 0, r.out);
    const applied = results.flatMap((r) => JSON.parse(r.out) as string[]);
    assert.deepEqual(applied, ['001_create_orders'], `round ${round}: ${results.map((r) => r.out).join(' | ')}`);
  }
});
