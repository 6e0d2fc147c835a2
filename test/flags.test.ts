// var/flags.json changed by several processes at once: every change lands (the file lock), a lock
// left by a killed process does not block anyone nor lets two changes in at once, and a held lock
// is waited for.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readFlags, setFlag, unsetFlag } from '../src/runtime/flags-file.ts';
import { FlagStore } from '../src/runtime/flags.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'slipway-flags-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const module = JSON.stringify(path.join(here, '..', 'src', 'runtime', 'flags-file.ts'));

function run(code: string): Promise<number | null> {
  const script = path.join(tmp, `child-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(script, code);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((resolve) => child.once('exit', (c) => resolve(c)));
}

test('four processes setting 40 flags each at the same time: all 160 land', async () => {
  const file = path.join(tmp, 'busy', 'flags.json');
  const codes = await Promise.all(
    [0, 1, 2, 3].map((p) => run(`import { setFlag } from ${module};\nfor (let k = 0; k < 40; k++) setFlag(${JSON.stringify(file)}, 'p${p}-' + k, { value: k % 2 ? 'on' : '25%' });\n`)),
  );
  assert.deepEqual(codes, [0, 0, 0, 0]);
  const flags = readFlags(file).flags;
  assert.equal(Object.keys(flags).length, 160);
  assert.deepEqual(flags['p3-39'], { state: 'on', updatedAt: flags['p3-39']!.updatedAt });
  assert.equal(existsSync(`${file}.lock`), false, 'no lock left behind');
});

test('a lock left by a process that is gone, or an old one, is taken over; so is an old breaker', async () => {
  const file = path.join(tmp, 'stale', 'flags.json');
  setFlag(file, 'a', { value: 'on' });
  // A pid that existed and exited.
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  writeFileSync(`${file}.lock`, String(child.pid));
  setFlag(file, 'b', { value: 'off' });
  assert.deepEqual(Object.keys(readFlags(file).flags).sort(), ['a', 'b']);
  // Our own (live) pid, but written 60 s ago.
  writeFileSync(`${file}.lock`, String(process.pid));
  const past = new Date(Date.now() - 60_000);
  utimesSync(`${file}.lock`, past, past);
  assert.equal(unsetFlag(file, 'a'), true);
  assert.deepEqual(Object.keys(readFlags(file).flags), ['b']);
  assert.equal(existsSync(`${file}.lock`), false);
  // A dead pid's lock, and the breaker of a process killed while it broke a lock, 60 s ago.
  writeFileSync(`${file}.lock`, String(child.pid));
  writeFileSync(`${file}.lock.break`, '');
  utimesSync(`${file}.lock.break`, past, past);
  setFlag(file, 'c', { value: 'on' });
  assert.deepEqual(Object.keys(readFlags(file).flags).sort(), ['b', 'c']);
  assert.deepEqual([existsSync(`${file}.lock`), existsSync(`${file}.lock.break`)], [false, false]);
});

test('a lock left by a process that is gone, with four changes waiting on it: one at a time', async () => {
  const file = path.join(tmp, 'stale-race', 'flags.json');
  setFlag(file, 'seed', { value: 'on' });
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  const journal = path.join(tmp, 'stale-race', 'journal');
  const go = path.join(tmp, 'stale-race', 'go');
  const rounds = 25;
  // Every round: once every change of the round before has ended, process 0 leaves a dead pid's
  // lock and names a moment 50 ms ahead (the go file); all four change the flags at that moment.
  // Each change notes when it began and ended; no two may overlap.
  const codes = await Promise.all(
    [0, 1, 2, 3].map((p) =>
      run(`import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { updateFlags } from ${module};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const read = (f) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
async function until(what, ok) {
  const deadline = Date.now() + 20_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('process ${p} waited 20 s for ' + what);
    await sleep(2);
  }
}
void (async () => {
  for (let round = 0; round < ${rounds}; round++) {
    if (${p} === 0) {
      await until('round ' + (round - 1) + ' to end', () => read(${JSON.stringify(journal)}).split('end').length - 1 === 4 * round);
      writeFileSync(${JSON.stringify(file + '.lock')}, '${child.pid}');
      writeFileSync(${JSON.stringify(go)}, JSON.stringify({ round, at: Date.now() + 50 }));
    }
    await until('round ' + round + ' to begin', () => read(${JSON.stringify(go)}).startsWith('{"round":' + round + ','));
    const { at } = JSON.parse(read(${JSON.stringify(go)}));
    while (Date.now() < at) {}
    updateFlags(${JSON.stringify(file)}, (data) => {
      appendFileSync(${JSON.stringify(journal)}, 'begin ${p}\\n');
      data.flags['p${p}-' + round] = { state: 'on', updatedAt: new Date().toISOString() };
      const busy = Date.now() + 5;
      while (Date.now() < busy) {}
      appendFileSync(${JSON.stringify(journal)}, 'end ${p}\\n');
    });
  }
})().catch((err) => {
  console.error(err.message);
  process.exitCode = 1;
});
`),
    ),
  );
  assert.deepEqual(codes, [0, 0, 0, 0]);
  const events = readFileSync(journal, 'utf8').trim().split('\n');
  assert.equal(events.length, 2 * 4 * rounds);
  for (let i = 0; i < events.length; i += 2) {
    assert.equal(events[i + 1], events[i]!.replace('begin', 'end'), `a change began inside another: ${events.slice(Math.max(0, i - 2), i + 3).join(', ')}`);
  }
  assert.equal(Object.keys(readFlags(file).flags).length, 1 + 4 * rounds, 'every change landed');
  assert.deepEqual([existsSync(`${file}.lock`), existsSync(`${file}.lock.break`)], [false, false], 'no lock left behind');
});

test('a held lock is waited for, and a bad value writes nothing', async () => {
  const file = path.join(tmp, 'held', 'flags.json');
  setFlag(file, 'a', { value: 'on' });
  const lock = JSON.stringify(`${file}.lock`);
  // Another process holds the lock for 400 ms.
  const holder = run(`import { writeFileSync, unlinkSync } from 'node:fs';\nwriteFileSync(${lock}, String(process.pid), { flag: 'wx' });\nsetTimeout(() => unlinkSync(${lock}), 400);\n`);
  const until = Date.now() + 5000;
  while (!existsSync(`${file}.lock`) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(`${file}.lock`), 'the holder took the lock');
  const started = Date.now();
  setFlag(file, 'b', { value: '10%' });
  assert.ok(Date.now() - started >= 200, 'the change waited for the holder');
  assert.equal(await holder, 0);
  assert.deepEqual(readFlags(file).flags.b?.percent, 10);
  const before = JSON.stringify(readFlags(file));
  assert.throws(() => setFlag(file, 'a', { value: 'sometimes' }), /bad flag value/);
  assert.equal(JSON.stringify(readFlags(file)), before);
  assert.equal(existsSync(`${file}.lock`), false);
});

test('a worker\'s flags file edited into bad JSON: the last good flags stay, one warning each time it turns bad', async () => {
  const file = path.join(tmp, 'watched', 'flags.json');
  setFlag(file, 'new_pricing', { value: 'on' });
  const warnings: string[] = [];
  const store = new FlagStore(file, (m) => warnings.push(m));
  assert.equal(store.enabled('new_pricing'), true);
  // A new mtime and size each time, as an editor's save gives.
  const rewrite = (text: string) => {
    writeFileSync(file, text);
    const t = new Date(Date.now() + Math.floor(Math.random() * 1e6));
    utimesSync(file, t, t);
  };
  rewrite('{"flags": {"new_pricing": {"state": "off"');
  store.reload();
  store.reload();
  rewrite('{"flags": {"new_pricing": {"state": "of');
  store.reload();
  assert.equal(store.enabled('new_pricing'), true, 'still the last good rule');
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0]!, /flags\.json: not valid JSON \(.+\); fix it or remove it .*; the last good flags stay in force$/);
  rewrite(JSON.stringify({ flags: { new_pricing: { state: 'off', updatedAt: new Date().toISOString() } } }));
  store.reload();
  assert.equal(store.enabled('new_pricing'), false, 'the fixed file applies');
  rewrite('not json');
  store.reload();
  assert.equal(warnings.length, 3, 'bad again: told again');
  // A worker that boots on a bad file has no last good flags: every flag answers its default.
  const fresh: string[] = [];
  const booted = new FlagStore(file, (m) => fresh.push(m));
  assert.equal(booted.enabled('new_pricing', undefined, true), true);
  assert.match(fresh[0]!, /every flag answers its default until then$/);
});
