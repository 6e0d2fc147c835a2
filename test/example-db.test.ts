// The orders example's database on its default, SQLite: several workers boot at once on a fresh
// file, each switches it to WAL and runs the migrations (migrateOnBoot). They must not race: one
// migrates, the others wait for SQLite's write lock and then find nothing left to do.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';

const dir = mkdtempSync(path.join(tmpdir(), 'slipway-example-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ROUNDS = 25;
const GAP_MS = 150;

// Each process opens and migrates a new file every round, all processes at the same moment.
const script = (at: number) => `
  import { openDatabase, migrate } from ${JSON.stringify(new URL('../examples/orders/src/db.ts', import.meta.url).href)};
  const results = [];
  for (let round = 0; round < ${ROUNDS}; round++) {
    await new Promise((r) => setTimeout(r, Math.max(0, ${at} + round * ${GAP_MS} - Date.now())));
    let db;
    try {
      db = openDatabase(new URL('sqlite:' + ${JSON.stringify(dir)} + '/orders-' + round + '.db'), '.', 1).db;
      results.push((await migrate(db)).applied);
    } catch (err) {
      results.push('FAILED round ' + round + ': ' + err.message);
    } finally {
      await db?.destroy();
    }
  }
  process.stdout.write(JSON.stringify(results));`;

function run(at: number): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(at)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

it(`four processes opening and migrating a fresh SQLite file at once, ${ROUNDS} times: all succeed, each file migrated once`, async () => {
  // Start once every process is up.
  const at = Date.now() + 3000;
  const results = await Promise.all([run(at), run(at), run(at), run(at)]);
  for (const r of results) assert.equal(r.code, 0, r.out);
  const perProcess = results.map((r) => JSON.parse(r.out) as Array<string[] | string>);
  for (let round = 0; round < ROUNDS; round++) {
    const outcomes = perProcess.map((p) => p[round]!);
    const failed = outcomes.filter((o) => typeof o === 'string');
    assert.deepEqual(failed, [], `round ${round}`);
    assert.deepEqual(outcomes.flat(), ['001_create_orders'], `round ${round}: ${JSON.stringify(outcomes)}`);
  }
});
