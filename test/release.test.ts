// Issue 2 acceptance: the release artifact, bin script, runtime config, health, graceful shutdown,
// supervision and the control channel, against real processes and sockets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import net from 'node:net';
import path from 'node:path';
import { request as httpRequest, Agent } from 'node:http';
import { alive, buildOrders, childPids, deploy, freePort, REPO, runCleanups, sleep, slipway, tempDir, waitFor } from './helpers/release.ts';
import { startLoad } from './helpers/load.ts';
import type { BuildResult } from '../src/build/index.ts';

after(runCleanups);

let build: BuildResult;
const SENTINEL = `SENTINEL_${Math.random().toString(36).slice(2)}_BUILD_ENV`;

before(async () => {
  process.env.SLIPWAY_TEST_SENTINEL = SENTINEL;
  process.env.DATABASE_URL_AT_BUILD = `postgres://user:${SENTINEL}@db/x`;
  try {
    build = await buildOrders();
  } finally {
    delete process.env.SLIPWAY_TEST_SENTINEL;
    delete process.env.DATABASE_URL_AT_BUILD;
  }
});

function get(url: string, agent?: Agent): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('release artifact', () => {
  it('builds the layout of DESIGN.md and a tarball with its sha256', () => {
    const root = build.releaseRoot;
    for (const p of ['bin/orders', 'releases/COOKIE', 'releases/RELEASES', 'releases/start.data', 'releases/1.0.0/app/app.mjs', 'releases/1.0.0/env.sh', 'releases/1.0.0/release.json', 'releases/1.0.0/slipway.mjs']) {
      assert.ok(statSync(path.join(root, p)), p);
    }
    assert.equal(statSync(path.join(root, 'bin/orders')).mode & 0o111, 0o111, 'bin/orders is executable');
    assert.equal(statSync(path.join(root, 'releases/COOKIE')).mode & 0o777, 0o400, 'COOKIE is 0400');
    assert.equal(readFileSync(path.join(root, 'releases/COOKIE'), 'utf8').trim().length, 64, '32 random bytes, hex');
    const sum = readFileSync(`${build.tarball}.sha256`, 'utf8');
    assert.match(sum, new RegExp(`^${build.sha256}  orders-1.0.0.tar.gz\\n$`));
    const script = readFileSync(path.join(root, 'bin/orders'), 'utf8');
    assert.match(script, /^#!\/bin\/sh\n/);
    assert.doesNotMatch(script, /\[\[|function |\$\{[A-Za-z_]+\/\/|declare |local /, 'no bash-isms');
  });

  it('bakes no build-time environment value into the release or the tarball', () => {
    for (const f of listFiles(build.releaseRoot)) {
      assert.ok(!readFileSync(f).includes(SENTINEL), `sentinel found in ${f}`);
    }
    const tarBytes = gunzipSync(readFileSync(build.tarball));
    assert.ok(!tarBytes.includes(SENTINEL), 'sentinel found in the tarball');
  });

  it('bin/orders is valid POSIX sh (dash -n)', async () => {
    const { execFileSync } = await import('node:child_process');
    execFileSync('dash', ['-n', path.join(build.releaseRoot, 'bin/orders')]);
  });

  it('the CLI as the README gives it: `slipway release --version V` builds V (not slipway\'s own --version)', async () => {
    const out = tempDir('slipway-cli-release-');
    const r = await slipway(['release', '--version', '9.9.9-cli', '-C', 'examples/orders', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const built = JSON.parse(r.stdout) as { version: string; tarball: string };
    assert.equal(built.version, '9.9.9-cli');
    assert.equal(built.tarball, path.join(out, 'orders-9.9.9-cli.tar.gz'));
    assert.ok(statSync(path.join(out, 'rel/orders/releases/9.9.9-cli/app/app.mjs')));
    // Before the command, --version is slipway's.
    const own = await slipway(['--version']);
    assert.equal(own.stdout, `${(JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version}\n`);
  });
});

describe('a deployed tarball, away from the source tree', () => {
  it('daemon → rpc/health/ready/pid/orders → stop, and nothing is left running', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port) });
    const started = await rel.daemon({}, { hideSource: true });
    assert.equal(started.code, 0, started.stderr);
    const supervisorPid = rel.info()!.pid;
    assert.equal(readFileSync(`/proc/${supervisorPid}/mountinfo`, 'utf8').includes(`${REPO} `), true, 'the source tree is covered in the release\'s mount namespace');
    assert.match(started.stdout, new RegExp(`orders 1.0.0 started \\(pid \\d+\\), listening on 127.0.0.1:${port}`));

    const rpc = await rel.run(['rpc', 'Health.ok()']);
    assert.equal(rpc.code, 0, rpc.stderr);
    assert.equal(rpc.stdout, 'true\n');

    const health = await get(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).ok, true);
    const ready = await get(`http://127.0.0.1:${port}/ready`);
    assert.equal(ready.status, 200, ready.body);
    const readyBody = JSON.parse(ready.body);
    assert.equal(readyBody.ready, true);
    assert.deepEqual(Object.keys(readyBody.checks).sort(), ['database', 'migrations']);
    assert.equal((await rel.run(['health'])).code, 0);
    assert.equal((await rel.run(['ready'])).code, 0);

    const pidOut = await rel.run(['pid']);
    assert.equal(pidOut.code, 0);
    const pid = Number(pidOut.stdout.trim());
    assert.ok(alive(pid), 'pid is live');
    const workers = childPids(pid);
    assert.ok(workers.length >= 1);
    // Workers run with Slipway's default node flags (WORKER_NODE_FLAGS), the release's after them.
    const execArgv = await rel.run(['rpc', 'process.execArgv']);
    assert.deepEqual(JSON.parse(execArgv.stdout), ['--no-memory-reducer'], execArgv.stderr);
    // The supervisor: its CommonJS bundle without the JIT (docs/reference.md), and V8 quiet about it.
    const supArgv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.deepEqual(supArgv.slice(1), ['--jitless', '--no-expose-wasm', '--expose-gc', path.join(rel.root, 'releases', '1.0.0', 'supervisor.cjs')]);
    assert.equal(readFileSync(path.join(rel.root, 'log', 'daemon.log'), 'utf8').replace(/^orders 1\.0\.0 started.*\n/m, ''), '', 'nothing else in daemon.log');

    const status = await rel.run(['status', '--json']);
    const st = JSON.parse(status.stdout);
    assert.equal(st.workers.length, 1);
    assert.equal(st.workers[0].version, '1.0.0');
    assert.equal(st.workers[0].state, 'ready');
    for (const k of ['pid', 'uptimeMs', 'restarts']) assert.ok(k in st.workers[0], k);
    await waitFor('memory in status', async () => JSON.parse((await rel.run(['status', '--json'])).stdout).workers[0].rss > 0, 5000, 200);
    assert.match((await rel.run(['status'])).stdout, /PID\s+VERSION\s+STATE\s+UPTIME\s+RESTARTS\s+RSS/);
    assert.equal((await rel.run(['version'])).stdout, 'orders 1.0.0\n');

    const created = await post(`http://127.0.0.1:${port}/orders`, { item: 'book', quantity: 2 }, { 'idempotency-key': 'key-1' });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('x-release'), '1.0.0');
    const order = (await created.json()) as { id: string; price_cents: number };
    const again = await post(`http://127.0.0.1:${port}/orders`, { item: 'book', quantity: 2 }, { 'idempotency-key': 'key-1' });
    assert.equal(again.status, 201);
    assert.equal(((await again.json()) as { id: string }).id, order.id, 'a retried request gets the first answer');
    const mismatch = await post(`http://127.0.0.1:${port}/orders`, { item: 'pen', quantity: 1 }, { 'idempotency-key': 'key-1' });
    assert.equal(mismatch.status, 422);
    const fetched = await get(`http://127.0.0.1:${port}/orders/${order.id}`);
    assert.equal(fetched.status, 200);
    assert.equal(JSON.parse(fetched.body).id, order.id);
    const list = JSON.parse((await get(`http://127.0.0.1:${port}/orders`)).body);
    assert.equal(list.total, 1, 'the retry created nothing new');
    assert.equal((await get(`http://127.0.0.1:${port}/orders/nope`)).status, 404);
    const bad = await post(`http://127.0.0.1:${port}/orders`, { item: '', quantity: -1 });
    assert.equal(bad.status, 400);
    assert.ok(statSync(path.join(rel.root, 'var', 'orders.db')).size > 0, 'SQLite lives in var/');

    const stop = await rel.run(['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(!alive(pid), 'supervisor gone');
    for (const w of workers) assert.ok(!alive(w), `worker ${w} gone`);
    assert.equal((await rel.run(['pid'])).code, 3, 'pid exits 3 when not running');
    assert.equal(statSync(path.join(rel.root, 'var', 'orders.db')).size > 0, true);
  });

  it('the same artifact listens where PORT says, with no rebuild', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port) });
    assert.equal((await rel.daemon()).code, 0);
    assert.equal((await get(`http://127.0.0.1:${port}/health`)).status, 200);
    assert.equal((await rel.run(['stop'])).code, 0);
  });

  it('eval runs in a fresh process with the app configured but no port bound', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port) });
    const r = await rel.run(['eval', 'Release.migrate()']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).applied, ['001_create_orders']);
    const v = await rel.run(['eval', '({ version: Release.version, orders: await Orders.count() })']);
    assert.equal(v.code, 0, v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), { version: '1.0.0', orders: 0 });
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(undefined);
        });
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
    const bad = await rel.run(['eval', 'Nope.nothing()']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^orders: eval failed: Nope is not defined\n$/);
  });

  it('bad runtime config: start exits non-zero within 5 s with one line naming the variable', async () => {
    const rel = await deploy(build);
    const t0 = Date.now();
    const badPort = await rel.run(['start'], { PORT: 'abc' }, 10_000);
    assert.notEqual(badPort.code, 0);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(badPort.stderr.trim().split('\n').length, 1, badPort.stderr);
    assert.match(badPort.stderr, /^orders: PORT: expected an integer, got "abc"\n$/);

    // A port another process listens on: one line, for start and for daemon, not a release that
    // "started" on a random port (libuv reports EADDRINUSE of bind(2) only at listen(2)).
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const busy = String((holder.address() as net.AddressInfo).port);
      for (const cmd of ['start', 'daemon']) {
        const r = await rel.run([cmd], { PORT: busy }, 10_000);
        assert.equal(r.code, 1, `${cmd}: ${r.stdout}${r.stderr}`);
        assert.equal(r.stderr, `orders: PORT: cannot bind 127.0.0.1:${busy}: EADDRINUSE (address already in use)\n`, cmd);
      }
      assert.equal((await rel.run(['pid'])).code, 3, 'nothing left running');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }

    const t1 = Date.now();
    const badDb = await rel.run(['start'], { PORT: String(await freePort()), DATABASE_URL: 'mysql://u:p@localhost/db' }, 10_000);
    assert.notEqual(badDb.code, 0);
    assert.ok(Date.now() - t1 < 5000, `took ${Date.now() - t1} ms`);
    const lines = badDb.stderr.trim().split('\n').filter((l) => l.startsWith('orders:'));
    assert.ok(lines.length >= 1, badDb.stderr);
    assert.match(lines[lines.length - 1]!, /DATABASE_URL: unsupported scheme "mysql:"/);
    assert.ok(!badDb.stderr.includes('u:p@'), 'no credentials echoed');

    const daemon = await rel.run(['daemon'], { PORT: String(await freePort()), DATABASE_URL: 'mysql://x/db' });
    assert.equal(daemon.code, 1);
    assert.match(daemon.stderr, /DATABASE_URL: unsupported scheme/);

    // The production hooks' switches take their few values; a typo is not silently "on".
    const badSwitch = await rel.run(['start'], { PORT: String(await freePort()), SLIPWAY_REQUEST_LOG: 'of' }, 10_000);
    assert.notEqual(badSwitch.code, 0);
    assert.match(badSwitch.stderr, /^orders: SLIPWAY_REQUEST_LOG: expected one of on, all, errors, off, got "of"$/m);
    const badContext = await rel.run(['start'], { PORT: String(await freePort()), SLIPWAY_REQUEST_CONTEXT: 'zones' }, 10_000);
    assert.notEqual(badContext.code, 0);
    assert.match(badContext.stderr, /^orders: SLIPWAY_REQUEST_CONTEXT: expected one of promises, async-hooks, off, got "zones"$/m);
    // Slipway's other worker settings too: one config line at boot, not a worker that fails after
    // the app booted and is restarted until the supervisor gives up.
    const badSettings: Array<[Record<string, string>, RegExp]> = [
      [{ LOG_LEVEL: 'loud' }, /^orders: LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"$/m],
      [{ KEEP_ALIVE_TIMEOUT: 'abc' }, /^orders: KEEP_ALIVE_TIMEOUT: expected a duration like 500ms, 30s or 2m, got "abc"$/m],
      [{ SLIPWAY_METRICS_PATH: 'metrics' }, /^orders: SLIPWAY_METRICS_PATH: expected a path that starts with \/, got "metrics"$/m],
      [{ SLIPWAY_REQUEST_LOG_RATE: '0' }, /^orders: SLIPWAY_REQUEST_LOG_RATE: must be at least 1, got 0$/m],
    ];
    for (const [env, line] of badSettings) {
      const bad = await rel.run(['start'], { PORT: String(await freePort()), ...env }, 10_000);
      assert.notEqual(bad.code, 0, JSON.stringify(env));
      assert.match(bad.stderr, line);
      assert.doesNotMatch(bad.stderr, /failed to boot|\n\s+at /, `no restarts, no stack: ${bad.stderr}`);
    }
    // A crash webhook that cannot work is a boot error, not a surprise at the first crash; the
    // URL (often a token itself) is not echoed.
    const badHook = await rel.run(['start'], { PORT: String(await freePort()), SLIPWAY_CRASH_WEBHOOK: 'ftp://hooks.example/T0KEN-xyz' }, 10_000);
    assert.notEqual(badHook.code, 0);
    assert.match(badHook.stderr, /^orders: SLIPWAY_CRASH_WEBHOOK: unsupported scheme "ftp:" \(expected one of http:, https:\)$/m);
    assert.ok(!badHook.stderr.includes('T0KEN'), 'the URL is not echoed');
  });

  it('include_node copies the running node into the release and the bin script uses it', async () => {
    const b = await buildOrders({ version: '1.0.1', includeNode: true });
    const rel = await deploy(b);
    const r = await rel.run(['eval', 'process.execPath']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), path.join(rel.root, 'node', 'bin', 'node'));
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM with 20 slow requests in flight and keep-alive clients: all answered, /ready 503, clean exit', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port), SLOW_MS: '2000', SLIPWAY_DRAIN_DELAY: '500ms', SLIPWAY_STOP_TIMEOUT: '30s' });
    const fg = rel.startForeground();
    await waitFor('ready', async () => (await get(`http://127.0.0.1:${port}/ready`)).status === 200);
    // Idle keep-alive clients, connected before the signal.
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });
    await Promise.all([1, 2, 3, 4].map(() => get(`http://127.0.0.1:${port}/hello`, keepAlive)));
    const slow = Array.from({ length: 20 }, () => get(`http://127.0.0.1:${port}/slow`));
    await waitFor('20 in flight', async () => JSON.parse((await rel.run(['status', '--json'])).stdout).workers[0].inFlight >= 20, 5000, 100);
    const signalled = Date.now();
    process.kill(fg.child.pid!, 'SIGTERM');
    await sleep(100);
    // From the signal on, /ready says 503: on a keep-alive connection, and on a new one during the drain delay.
    const readyKeepAlive = await get(`http://127.0.0.1:${port}/ready`, keepAlive);
    assert.equal(readyKeepAlive.status, 503);
    assert.equal(readyKeepAlive.headers.connection, 'close', 'a draining worker closes keep-alive connections after the response');
    const readyFresh = await get(`http://127.0.0.1:${port}/ready`);
    assert.equal(readyFresh.status, 503);
    assert.match(readyFresh.body, /draining/);
    const results = await Promise.all(slow);
    assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
    const exit = await fg.exited;
    const took = Date.now() - signalled;
    assert.equal(exit.code, 0);
    assert.ok(took < 15_000, `stopped in ${took} ms, long before the 30 s stop timeout`);
    keepAlive.destroy();
  });

  it('a request that never ends: the release exits at the stop timeout and logs the cut request', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port), SLIPWAY_STOP_TIMEOUT: '2s' });
    const fg = rel.startForeground();
    await waitFor('ready', async () => (await get(`http://127.0.0.1:${port}/ready`)).status === 200);
    const hang = get(`http://127.0.0.1:${port}/hang`).catch((e: Error) => e);
    await waitFor('hang in flight', async () => JSON.parse((await rel.run(['status', '--json'])).stdout).workers[0].inFlight >= 1, 5000, 100);
    const t0 = Date.now();
    process.kill(fg.child.pid!, 'SIGTERM');
    const exit = await fg.exited;
    const took = Date.now() - t0;
    assert.equal(exit.code, 0);
    assert.ok(took >= 1900 && took < 8000, `exited after ${took} ms (stop timeout 2 s)`);
    assert.ok((await hang) instanceof Error, 'the cut request was cut');
    const log = readFileSync(path.join(rel.root, 'log', 'orders.log'), 'utf8');
    assert.match(log, /"url":"\/hang"[^\n]*request cut by stop timeout|request cut by stop timeout[^\n]*"url":"\/hang"/);
  });
});

describe('supervision', () => {
  it('kill -9 of the worker under load: no connection is refused, and a new worker takes over', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port) });
    assert.equal((await rel.daemon()).code, 0);
    const [worker] = await rel.workerPids();
    const load = startLoad({ origin: `http://127.0.0.1:${port}`, connections: 8, path: '/hello', durationMs: 4000, maxRequests: 200_000, fresh: true });
    await sleep(1000);
    const killedAt = Date.now();
    process.kill(worker!, 'SIGKILL');
    const res = await load.done;
    assert.equal(res.errors.ECONNREFUSED ?? 0, 0, `refused: ${JSON.stringify(res.errors)}`);
    assert.ok(res.samples.some((s) => s.ok && s.at > killedAt + 100), 'requests succeed after the kill');
    const failed = res.samples.filter((s) => !s.ok).length;
    assert.ok(failed <= 8, `only requests in flight at the kill may fail (got ${failed}: ${JSON.stringify(res.errors)})`);
    const after = await rel.workerPids();
    assert.equal(after.length, 1);
    assert.notEqual(after[0], worker);
    const st = JSON.parse((await rel.run(['status', '--json'])).stdout);
    assert.equal(st.restarts, 1);
    assert.equal(st.workers[0].restarts, 1);
  });

  it('an app that throws at boot: restarts stop at the intensity limit, exit non-zero with the reason, no tight loop', async () => {
    const overlay = tempDir();
    writeFileSync(path.join(overlay, 'env.sh'), '#!/bin/sh\nexport ORDERS_FAULT_BOOT_THROW=1\n');
    const b = await buildOrders({ version: '9.9.9', overlay });
    const rel = await deploy(b, { PORT: String(await freePort()) });
    const t0 = Date.now();
    const r = await rel.run(['start'], {}, 30_000);
    const took = Date.now() - t0;
    assert.notEqual(r.code, 0);
    const line = r.stderr.trim().split('\n').filter((l) => /^orders: worker (crashed|failed)/.test(l));
    assert.equal(line.length, 1, r.stderr);
    assert.match(line[0]!, /^orders: worker failed to boot 4 times in a row \(limit: max_restarts 3\); last: .*ORDERS_FAULT_BOOT_THROW/);
    const log = readFileSync(path.join(rel.root, 'log', 'orders.log'), 'utf8');
    const starts = log.split('\n').filter((l) => /worker \d+ starting/.test(l)).length;
    assert.equal(starts, 4, 'one start and three restarts');
    assert.ok(took > 600, `backoff between restarts (took ${took} ms)`);
    assert.ok(took < 15_000);
  });
});

describe('control channel', () => {
  it('refuses a wrong cookie; the control socket is 0600; remote gives a REPL in the worker', async () => {
    const port = await freePort();
    const rel = await deploy(build, { PORT: String(port) });
    assert.equal((await rel.daemon()).code, 0);
    assert.equal(statSync(path.join(rel.root, 'tmp', 'control.sock')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(rel.root, 'releases', 'COOKIE')).mode & 0o777, 0o400);
    const rpc = await rel.run(['rpc', 'Health.ok()'], { RELEASE_COOKIE: 'wrong' });
    assert.notEqual(rpc.code, 0);
    assert.equal(rpc.stderr, 'orders: refused: wrong cookie (check RELEASE_COOKIE or releases/COOKIE)\n');
    const stop = await rel.run(['stop'], { RELEASE_COOKIE: 'wrong' });
    assert.notEqual(stop.code, 0);
    assert.match(stop.stderr, /wrong cookie/);
    assert.equal((await get(`http://127.0.0.1:${port}/health`)).status, 200, 'still running');

    // A raw client: what the supervisor answers to one line.
    const rawLine = (line: string) =>
      new Promise<string>((resolve) => {
        const s = net.connect(path.join(rel.root, 'tmp', 'control.sock'));
        let out = '';
        s.on('data', (c) => (out += c));
        s.on('close', () => resolve(out));
        s.write(line);
      });
    // Garbage gets one clear error, and the supervisor lives on.
    assert.match(await rawLine('not json\n'), /bad request: not a JSON line/);
    // A version is a directory under releases/: one that walks out of it is refused by name, also
    // from a client that skips the control script's own check.
    const cookie = readFileSync(path.join(rel.root, 'releases', 'COOKIE'), 'utf8').trim();
    const raw = (cmd: string, args: Record<string, unknown>) => rawLine(JSON.stringify({ cookie, cmd, args }) + '\n');
    assert.match(await raw('upgrade', { version: '../../tmp' }), /\.\.\/\.\.\/tmp\\" is not a release version/);
    assert.match(await raw('request-log', { mode: 'loud' }), /bad request-log mode \\"loud\\" \(on, all, errors, off\)/);

    const { spawn } = await import('node:child_process');
    const child = spawn(rel.bin, ['remote'], { env: { ...process.env, ...rel.env } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stdin.write('Health.ok() && Release.version\n');
    child.stdin.write('.exit\n');
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
    assert.match(out, /'1\.0\.0'/);

    const rpcErr = await rel.run(['rpc', 'throw new Error("boom")']);
    assert.equal(rpcErr.code, 1);
    assert.equal(rpcErr.stderr, 'orders: boom\n');
  });

  it('every command has --help; an unknown command is a usage error', async () => {
    const rel = await deploy(build);
    const help = await rel.run(['help']);
    assert.equal(help.code, 0);
    for (const cmd of ['start', 'daemon', 'stop', 'restart', 'pid', 'version', 'status', 'rpc', 'eval', 'remote', 'health', 'ready', 'install', 'upgrade', 'rollback', 'releases', 'logs', 'log-level', 'request-log']) {
      assert.match(help.stdout, new RegExp(`\\n  ${cmd}\\b`), cmd);
      const h = await rel.run([cmd, '--help']);
      assert.equal(h.code, 0, cmd);
      assert.match(h.stdout, new RegExp(`Usage: orders ${cmd}`));
    }
    const bad = await rel.run(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command 'frobnicate'/);
    // Bad arguments are usage errors (exit 2, one line) before anything is asked of the release,
    // running or not (health said "not running", exit 3, and daemon exit 1).
    const usage: Array<[string[], RegExp]> = [
      [['health', '--timeout', 'abc'], /^error: option '--timeout <duration>' argument 'abc' is invalid\. expected a duration above 0/],
      [['ready', '--timeout', '0'], /^error: option '--timeout <duration>' argument '0' is invalid/],
      [['daemon', '--timeout', '-1'], /^error: option '--timeout <duration>' argument '-1' is invalid/],
      [['upgrade', '../../etc'], /^error: command-argument value '\.\.\/\.\.\/etc' is invalid for argument 'version'\. not a release version/],
      [['rollback', 'a/b'], /^error: command-argument value 'a\/b' is invalid for argument 'version'/],
    ];
    for (const [args, line] of usage) {
      const r = await rel.run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, line);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.equal(existsSync(path.join(rel.root, 'tmp', 'supervisor.json')), false, 'daemon started nothing');
  });
});

