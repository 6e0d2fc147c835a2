// The generated units (ops/systemd) under a real systemd, booted safely in systemd-nspawn
// (test/helpers/nspawn.ts): start, reload = upgrade under load, kill -9 of the supervisor with
// socket activation, graceful stop within TimeoutStopSec, restart, systemd-analyze verify.
// The committed unit keeps its non-root User=orders: the test creates that user inside the
// container from the committed orders.sysusers.conf, as a host would (systemd-sysusers).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { copyFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { buildOrders, REPO, runCleanups, sleep, tempDir, waitFor } from './helpers/release.ts';
import { bootContainer, nspawnAvailable, type Container } from './helpers/nspawn.ts';

after(runCleanups);

const skip = nspawnAvailable();
const UNITS = path.join(REPO, 'ops', 'systemd');
const ORIGIN = 'http://127.0.0.1:4000';
let ct: Container;

async function sh(cmd: string, timeoutMs = 120_000) {
  return ct.exec(['/bin/sh', '-c', cmd], { timeoutMs });
}
async function ok(cmd: string, timeoutMs?: number) {
  const r = await sh(cmd, timeoutMs);
  if (r.code !== 0) {
    const j = await sh('journalctl -u orders.service -u orders.socket -n 40 --no-pager');
    assert.fail(`${cmd}: exit ${r.code}\n${r.stdout}${r.stderr}\njournal:\n${j.stdout}`);
  }
  return r.stdout.trim();
}
const httpCode = async (p: string) => (await sh(`curl -s -o /dev/null -m 5 -w '%{http_code}' ${ORIGIN}${p}`)).stdout.trim();
const release = async () => (await sh(`curl -s -m 5 -D - -o /dev/null ${ORIGIN}/hello | tr -d '\\r' | sed -n 's/^x-release: //p'`)).stdout.trim();
const mainPid = async () => Number(await ok('systemctl show -p MainPID --value orders.service'));

before(async () => {
  if (skip) return;
  const [b1, b2] = await Promise.all([buildOrders({ version: '1.0.0' }), buildOrders({ version: '1.1.0' })]);
  const dir = tempDir('slipway-sd-');
  chmodSync(dir, 0o755);
  const root = path.join(dir, 'orders');
  await import('node:fs').then((fs) => fs.mkdirSync(root));
  await tar.x({ file: b1.tarball, cwd: root });
  for (const f of [b2.tarball, `${b2.tarball}.sha256`]) copyFileSync(f, path.join(dir, path.basename(f)));
  ct = await bootContainer({
    logFile: path.join(dir, 'nspawn.log'),
    bind: [[root, '/opt/orders'], [dir, '/srv/dist']],
    // Not in /etc/systemd/system at boot: the first boot's presets would enable and start them.
    bindRo: [[UNITS, '/srv/units']],
  });
  await ok(
    'cp /srv/units/orders.service /srv/units/orders.socket /etc/systemd/system/ && systemd-sysusers /srv/units/orders.sysusers.conf && chown -R orders:orders /opt/orders && ' +
      // only lo in a --private-network container: nothing to wait for
      'systemctl mask --now systemd-networkd-wait-online.service >/dev/null 2>&1; true',
  );
  // The runtime config: a short bake period so that an upgraded release becomes permanent quickly.
  await ok(`mkdir -p /etc/orders && printf 'SLIPWAY_BAKE_PERIOD=2s\\nSLIPWAY_RELEASE=\\n' > /etc/orders/orders.env && systemctl daemon-reload`);
});

test('systemd-analyze verify is clean for the generated units', { skip }, async () => {
  const r = await sh('systemd-analyze verify /etc/systemd/system/orders.socket /etc/systemd/system/orders.service 2>&1');
  const mine = r.stdout.split('\n').filter((l) => /orders/.test(l));
  assert.equal(r.code, 0, r.stdout);
  assert.deepEqual(mine, [], r.stdout);
});

test('systemctl start: active (Type=notify), socket activation, /health 200', { skip }, async () => {
  await ok('systemctl enable --now orders.socket && systemctl start orders.service', 150_000);
  assert.equal(await ok('systemctl is-active orders.service'), 'active');
  assert.equal(await httpCode('/health'), '200');
  assert.equal(await httpCode('/ready'), '200');
  const st = JSON.parse(await ok('/opt/orders/bin/orders status --json')) as { listen: { activated: boolean }; version: string };
  assert.equal(st.listen.activated, true);
  assert.equal(st.version, '1.0.0');
  assert.equal(await ok("ps -o user= -p $(systemctl show -p MainPID --value orders.service)"), 'orders');
  assert.match(await ok('systemctl show -p WatchdogUSec --value orders.service'), /10s/);
});

test('systemctl reload: upgrade to the release named in the EnvironmentFile with no failed request under load', { skip }, async () => {
  await ok('setpriv --reuid=orders --regid=orders --clear-groups /opt/orders/bin/orders install /srv/dist/orders-1.1.0.tar.gz');
  await ok("sed -i 's/^SLIPWAY_RELEASE=.*/SLIPWAY_RELEASE=1.1.0/' /etc/orders/orders.env");
  const load = ct.load(ORIGIN, 8000, 8);
  await sleep(1500);
  const t0 = Date.now();
  await ok('systemctl reload orders.service', 150_000);
  const reloadMs = Date.now() - t0;
  const res = await load;
  assert.equal(res.failed, 0, `failed requests during reload: ${JSON.stringify({ errors: res.errors, statuses: res.statuses })}`);
  assert.ok(res.ok > 50, `too little traffic: ${res.ok}`);
  assert.ok(res.releases['1.0.0'] && res.releases['1.1.0'], `both releases served: ${JSON.stringify(res.releases)} (reload took ${reloadMs} ms)`);
  assert.equal(await release(), '1.1.0');
  assert.equal(await ok('systemctl is-active orders.service'), 'active');
  await waitFor('1.1.0 permanent after the bake period', async () => (await sh('cat /opt/orders/releases/start.data')).stdout.trim() === '1.1.0', 15_000, 200);
});

test('kill -9 of the supervisor: systemd restarts it and no connection is refused (socket activation)', { skip }, async () => {
  const before = await mainPid();
  const load = ct.load(ORIGIN, 7000, 4, true);
  await sleep(1500);
  await ok(`kill -9 ${before}`);
  const res = await load;
  await waitFor('a new supervisor', async () => {
    const p = await mainPid();
    return p !== 0 && p !== before && (await sh('systemctl is-active orders.service')).stdout.trim() === 'active';
  }, 30_000, 200);
  assert.equal(res.errors.ECONNREFUSED, undefined, `refused connections: ${JSON.stringify(res.errors)}`);
  // KillMode=control-group: the orphaned workers get SIGTERM and finish what they have in flight
  // before systemd starts the new supervisor; connections wait in systemd's socket meanwhile.
  assert.equal(res.failed, 0, `failed requests across the supervisor restart: ${JSON.stringify({ errors: res.errors, statuses: res.statuses })}`);
  assert.ok(res.ok > 20, `too little traffic: ${res.ok}`);
  assert.equal(await httpCode('/health'), '200');
  assert.equal(await release(), '1.1.0', 'the restarted supervisor boots the permanent release');
  assert.ok(Number(await ok('systemctl show -p NRestarts --value orders.service')) >= 1);
});

test('systemctl stop: graceful (in-flight request completes), within TimeoutStopSec', { skip }, async () => {
  const slow = sh(`curl -s -o /dev/null -m 20 -w '%{http_code}' ${ORIGIN}/slow`, 30_000);
  await sleep(400);
  const t0 = Date.now();
  await ok('systemctl stop orders.service', 60_000);
  const took = Date.now() - t0;
  assert.equal((await slow).stdout.trim(), '200', 'the in-flight request finished during the drain');
  const timeoutStop = await ok('systemctl show -p TimeoutStopUSec --value orders.service');
  assert.ok(took < 45_000, `stop took ${took} ms (TimeoutStopSec ${timeoutStop})`);
  assert.equal(await ok('systemctl show -p Result --value orders.service'), 'success');
  assert.equal((await sh('systemctl is-active orders.service')).stdout.trim(), 'inactive');
});

test('systemctl restart works (and the socket brings the service back on demand)', { skip }, async () => {
  // The socket is still listening: a connection starts the service again (socket activation).
  assert.equal(await httpCode('/health'), '200');
  await waitFor('active after activation', async () => (await sh('systemctl is-active orders.service')).stdout.trim() === 'active', 20_000, 200);
  const before = await mainPid();
  await ok('systemctl restart orders.service', 150_000);
  assert.equal(await ok('systemctl is-active orders.service'), 'active');
  assert.notEqual(await mainPid(), before);
  assert.equal(await httpCode('/health'), '200');
  assert.equal(await release(), '1.1.0');
});
