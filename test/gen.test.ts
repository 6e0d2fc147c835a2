// slipway gen: the committed ops/ files are exactly what gen produces from the example's release
// config, they pass their schemas (compose-spec, Kubernetes), and mistakes are caught by --check.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { REPO, ORDERS, runCleanups, slipway, tempDir } from './helpers/release.ts';
import { checkFile, generateAll, loadModel } from '../src/gen/index.ts';

after(runCleanups);

const OPS = path.join(REPO, 'ops');
const model = loadModel(ORDERS);

test('committed ops/ files match what gen produces (no drift)', () => {
  const want = generateAll(model, OPS);
  for (const [rel, text] of Object.entries(want)) {
    assert.equal(readFileSync(path.join(OPS, rel), 'utf8'), text, `ops/${rel} drifted from \`slipway gen all -C examples/orders --out ops\`: regenerate it`);
  }
});

test('slipway gen --check passes on the committed files (schemas, timeouts, drift)', async () => {
  const r = await slipway(['gen', '--check', '-C', 'examples/orders', '--out', 'ops']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /OK/);
});

test('generated files carry the release config', () => {
  const svc = readFileSync(path.join(OPS, 'systemd/orders.service'), 'utf8');
  for (const line of ['Type=notify', 'WatchdogSec=10', 'TimeoutStopSec=45', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'User=orders', 'Requires=orders.socket', 'EnvironmentFile=-/etc/orders/orders.env'])
    assert.ok(svc.includes(line), line);
  assert.match(readFileSync(path.join(OPS, 'systemd/orders.socket'), 'utf8'), /ListenStream=0\.0\.0\.0:4000/);
  const compose = readFileSync(path.join(OPS, 'docker-compose.app.yml'), 'utf8');
  for (const s of ['order: start-first', 'failure_action: rollback', 'condition: service_healthy', 'stop_grace_period: 40s', '/opt/orders/bin/orders']) assert.ok(compose.includes(s), s);
  const dep = readFileSync(path.join(OPS, 'k8s/deployment.yaml'), 'utf8');
  for (const s of ['maxUnavailable: 0', 'path: /ready', 'path: /health', 'startupProbe', 'preStop', 'terminationGracePeriodSeconds: 45']) assert.ok(dep.includes(s), s);
});

test('--check catches an unknown key and a grace period shorter than the stop timeout, with clear messages', async () => {
  const dir = tempDir('slipway-gen-');
  const svc = readFileSync(path.join(OPS, 'systemd/orders.service'), 'utf8').replace('TimeoutStopSec=45', 'TimeoutStopSec=20').replace('NoNewPrivileges=yes', 'NoNewPrivilegs=yes');
  const compose = readFileSync(path.join(OPS, 'docker-compose.app.yml'), 'utf8').replace('stop_grace_period: 40s', 'stop_grace_period: 25s').replace('    init: true', '    init: true\n    restart_polcy: always');
  const dep = readFileSync(path.join(OPS, 'k8s/deployment.yaml'), 'utf8').replace('terminationGracePeriodSeconds: 45', 'terminationGracePeriodSeconds: 30').replace('imagePullPolicy: IfNotPresent', 'imagePullPolicy: IfNotPresent\n          livenesProbe: {}');
  writeFileSync(path.join(dir, 'orders.service'), svc);
  writeFileSync(path.join(dir, 'docker-compose.yml'), compose);
  writeFileSync(path.join(dir, 'deployment.yaml'), dep);
  const r = await slipway(['gen', '--check', dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /orders\.service: line \d+: unknown key NoNewPrivilegs= in \[Service\]/);
  assert.match(r.stderr, /orders\.service: TimeoutStopSec=20 is not above drain delay 0s \+ stop timeout 30s/);
  assert.match(r.stderr, /docker-compose\.yml: compose-spec: services\.app: unknown key "restart_polcy"/);
  assert.match(r.stderr, /stop_grace_period 25s is not above drain delay 0s \+ stop timeout 30s/);
  assert.match(r.stderr, /deployment\.yaml: Deployment orders: spec\.template\.spec\.containers\[0\]\.livenesProbe: unknown key/);
  assert.match(r.stderr, /terminationGracePeriodSeconds 30 is not above preStop 5s \+ drain delay 0s \+ stop timeout 30s/);
});

test('Kubernetes schema errors and bad usage fail with one clear line', async () => {
  const bad = readFileSync(path.join(OPS, 'k8s/service.yaml'), 'utf8').replace('port: 80', 'port: eighty');
  const problems = await checkFile('service.yaml', bad, model);
  assert.ok(problems.some((p) => /Service orders: .*port.*must be integer/.test(p.message)), JSON.stringify(problems));
  const r = await slipway(['gen', 'nginx', '-C', 'examples/orders']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /unknown target "nginx"/);
  const h = await slipway(['gen', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--check/);
});
