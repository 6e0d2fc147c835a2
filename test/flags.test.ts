// var/flags.json changed by several processes at once: every change lands (the file lock), a lock
// left by a killed process does not block anyone, and a held lock is waited for.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readFlags, setFlag, unsetFlag } from '../src/runtime/flags-file.ts';

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

test('a lock left by a process that is gone, or an old one, is taken over', async () => {
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
