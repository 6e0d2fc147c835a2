// docs/runbook/incidents.md, for real: each checklist's `sh` block runs against a deployed
// release in the state the checklist is for, and its **Expect** outcome is checked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { REPO, buildOrders, deploy, freePort, runCleanups, sleep, waitFor, type Deployed } from './helpers/release.ts';
import type { BuildResult } from '../src/build/index.ts';

after(runCleanups);

const doc = readFileSync(path.join(REPO, 'docs', 'runbook', 'incidents.md'), 'utf8');

/** The commands of the `sh` block under the heading that starts with `## N.` */
function checklist(n: number): string[] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(`${n}. `));
  assert.ok(section, `checklist ${n} in incidents.md`);
  const block = /```sh\n([\s\S]*?)```/.exec(section!);
  assert.ok(block, `an sh block in checklist ${n}`);
  return block![1]!.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

let app: Deployed;
let v110: BuildResult;

/** Run each command with sh in the release root, as the runbook says; all must exit 0. */
async function runChecklist(n: number): Promise<string[]> {
  const outs: string[] = [];
  for (const cmd of checklist(n)) {
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile('/bin/sh', ['-c', cmd], { cwd: app.root, env: { ...process.env, ...app.env }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    assert.equal(r.code, 0, `checklist ${n}: \`${cmd}\` exited ${r.code}:\n${r.out}`);
    outs.push(r.out);
  }
  return outs;
}

before(async () => {
  const [b1, b2] = await Promise.all([buildOrders({ version: '1.0.0' }), buildOrders({ version: '1.1.0' })]);
  v110 = b2!;
  app = await deploy(b1!, { PORT: String(await freePort()), SLIPWAY_WORKERS: '1', SLIPWAY_BAKE_PERIOD: '60s' });
  const r = await app.daemon();
  assert.equal(r.code, 0, r.stderr);
});

test('1. a failing worker: status, crashes, crash report, metrics, logs', async () => {
  const pid = (await app.workerPids())[0];
  await app.run(['rpc', `(setTimeout(() => Promise.reject(new Error('payment client exploded')), 10), 1)`]);
  await waitFor('a replacement worker', async () => {
    const pids = await app.workerPids();
    return pids.length === 1 && pids[0] !== pid && (await app.run(['ready', '--quiet'])).code === 0;
  }, 20_000);
  const [status, crashes, show, metrics, logs] = await runChecklist(1);
  assert.match(status!, /restarts 1/);
  assert.match(crashes!, /unhandledRejection\s+Error: payment client exploded/);
  const report = JSON.parse(show!) as { error: { stack: string }; release: { version: string }; node: string; memory: { rss: number }; lastLogs: string[]; uptime_s: number };
  assert.match(report.error.stack, /payment client exploded/);
  assert.equal(report.release.version, '1.0.0');
  assert.equal(report.node, process.version);
  assert.ok(report.memory.rss > 0 && report.lastLogs.length > 0 && report.uptime_s >= 0);
  assert.match(metrics!, /^slipway_worker_crashes_total\{version="1.0.0"\} 1$/m);
  assert.match(metrics!, /^slipway_worker_restarts_total 1$/m);
  assert.match(logs!, /crashed: Error: payment client exploded/);
});

test('2. a bad deploy: rollback to the permanent release', async () => {
  assert.equal((await app.run(['install', v110.tarball])).code, 0);
  const up = await app.run(['upgrade', '1.1.0']);
  assert.equal(up.code, 0, up.stderr);
  const [, releases, rollback, version, releasesAfter] = await runChecklist(2);
  assert.match(releases!, /1\.1\.0\s+current/);
  assert.match(rollback!, /rolled back 1\.1\.0 → 1\.0\.0/);
  assert.equal(version!.trim(), 'orders 1.0.0');
  assert.match(releasesAfter!, /1\.0\.0\s+permanent/);
  const r = await request(app.url('/hello'));
  await r.body.text();
  assert.equal(r.headers['x-release'], '1.0.0');
  const metrics = (await app.run(['metrics'])).stdout;
  assert.match(metrics, /^slipway_upgrades_total 1$/m);
  assert.match(metrics, /^slipway_rollbacks_total 1$/m);
  assert.match(metrics, /^slipway_release_info\{[^}]*version="1\.0\.0"[^}]*\} 1$/m);
});

test('3. a feature that misbehaves: flag off, applied within a second', async () => {
  assert.equal((await app.run(['flags', 'set', 'new_pricing', 'on'])).code, 0);
  const pricing = async () => {
    const r = await request(app.url('/orders'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'x', quantity: 20 }) });
    const body = JSON.parse(await r.body.text()) as { price_cents: number };
    return `${r.headers['x-pricing']} ${body.price_cents}`;
  };
  await waitFor('new pricing on', async () => (await pricing()) === 'new 9000', 3000);
  const [before, , afterList] = await runChecklist(3);
  const done = Date.now();
  assert.match(before!, /new_pricing\s+on/);
  assert.match(afterList!, /new_pricing\s+off/);
  await sleep(Math.max(0, 1000 - (Date.now() - done)));
  for (let i = 0; i < 5; i++) assert.equal(await pricing(), 'classic 10000');
});

test('4. a dependency is down: readiness says which and why, and comes back by itself', async () => {
  const down = await app.run(['rpc', `(globalThis.paymentsDown = true, Health.check('payments', () => { if (globalThis.paymentsDown) throw new Error('connect ECONNREFUSED 127.0.0.1:9') }, 500), 1)`]);
  assert.equal(down.code, 0, down.stderr);
  await waitFor('readiness to fail on the dependency', async () => {
    const r = await app.run(['ready']);
    return r.code === 1 && r.stdout.includes('ECONNREFUSED');
  }, 5000);
  const [ready, status, metrics, logs] = await runChecklist(4);
  assert.match(ready!, /"failing":"payments: connect ECONNREFUSED 127\.0\.0\.1:9"/);
  assert.match(ready!, /not ready/);
  assert.match(status!, /running/);
  assert.match(metrics!, /^slipway_workers_ready 0$/m);
  assert.match(logs!, /not ready: payments: connect ECONNREFUSED/);
  await app.run(['rpc', '(globalThis.paymentsDown = false, 1)']);
  await waitFor('readiness back', async () => (await app.run(['ready', '--quiet'])).code === 0, 5000);
});
