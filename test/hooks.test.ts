// Issue 6 acceptance: request logs with trace ids, OTLP export, crash reports, aggregated
// /metrics, feature flags under load (kill switch within 1 s, kept across restart and upgrade),
// and no secret in any log file. One real release (2 workers) with a local OTLP/HTTP receiver.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { buildOrders, deploy, freePort, logFiles, neverLogged, runCleanups, onCleanup, sleep, waitFor, type Deployed } from './helpers/release.ts';
import type { BuildResult } from '../src/build/index.ts';
import { startLoad } from './helpers/load.ts';
import { initTracing } from '../src/runtime/tracing.ts';

after(runCleanups);

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number; message?: string };
}

const spans: Span[] = [];
const crashPosts: Array<{ attempt: number; authorization?: string; body: { error: { message: string } } }> = [];
let crashAttempts = 0;
/** While set, the receiver refuses spans (400, which the exporter does not retry). */
let refuseSpans = false;
let app: Deployed;
let v100: BuildResult;
let v110: BuildResult;

const SECRETS = ['S3cretPw-db', 'S3cretPw-str', 'Bearer-Top-Secret-123', 'cookie-secret-456', 'pw-field-789', 'hook-token-321'];
neverLogged(...SECRETS);

async function receiver(): Promise<number> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && refuseSpans) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":3,"message":"refused by the test"}');
      } else if (req.url === '/v1/traces') {
        const data = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Span[] }> }> };
        for (const rs of data.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else if (req.url === '/crash') {
        // The first attempt fails: the reporter must retry.
        crashAttempts++;
        if (crashAttempts === 1) return void res.writeHead(503).end();
        crashPosts.push({ attempt: crashAttempts, authorization: req.headers.authorization, body: JSON.parse(body) });
        res.writeHead(204).end();
      } else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  server.unref();
  return (server.address() as { port: number }).port;
}

async function get(p: string, headers: Record<string, string> = {}, on: Deployed = app) {
  const r = await request(on.url(p), { headers });
  return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
}

async function metric(name: string, on: Deployed = app): Promise<number> {
  const r = await get('/metrics', {}, on);
  assert.equal(r.status, 200);
  let sum = 0;
  for (const line of r.text.split('\n')) if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.split(' ').pop());
  return sum;
}

function logLines(on: Deployed = app): Array<Record<string, unknown>> {
  const text = readFileSync(path.join(on.root, 'log', 'orders.log'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  const port = await receiver();
  const [b1, b2] = await Promise.all([buildOrders({ version: '1.0.0' }), buildOrders({ version: '1.1.0' })]);
  v100 = b1!;
  v110 = b2!;
  app = await deploy(b1!, {
    PORT: String(await freePort()),
    SLIPWAY_WORKERS: '2',
    SLIPWAY_BAKE_PERIOD: '1s',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    SLIPWAY_CRASH_WEBHOOK: `http://127.0.0.1:${port}/crash`,
    SLIPWAY_CRASH_WEBHOOK_AUTHORIZATION: `Bearer ${SECRETS[5]}`,
    ORDERS_FAULT_BAD_QUERY: '1',
  });
  const r = await app.daemon();
  assert.equal(r.code, 0, r.stderr);
});

test('a traceparent: the same trace id in the request log line and in the exported spans (server + query)', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parent = '00f067aa0ba902b7';
  const r = await request(app.url('/orders'), {
    method: 'POST',
    headers: { traceparent: `00-${traceId}-${parent}-01`, 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'traced', quantity: 2 }),
  });
  await r.body.text();
  assert.equal(r.statusCode, 201);
  const reqId = r.headers['x-request-id'] as string;
  const line = await waitFor('the request log line', () => logLines().find((l) => l.msg === 'request' && l.req_id === reqId));
  assert.equal(line.trace_id, traceId);
  // The app's own line, written after the handler's database awaits, carries the same ids.
  const created = await waitFor('the app log line of that request', () => logLines().find((l) => l.msg === 'order created' && l.req_id === reqId));
  assert.equal(created.trace_id, traceId);
  assert.equal(created.span_id, line.span_id);
  assert.equal(line.route, '/orders');
  assert.equal(line.status, 201);
  assert.equal(line.release, '1.0.0');
  assert.equal(typeof line.ms, 'number');
  const server = await waitFor('the exported server span', () => spans.find((s) => s.traceId === traceId && s.kind === 2));
  assert.equal(server.parentSpanId, parent);
  assert.equal(server.name, 'POST /orders');
  const query = await waitFor('an exported query span', () => spans.find((s) => s.traceId === traceId && s.kind === 3 && /orders/.test(s.name)));
  assert.equal(query.parentSpanId, server.spanId);
  assert.equal(line.span_id, server.spanId);
});

test('a query that fails: its span is exported, ended with the error, under the request span', async () => {
  const traceId = '5bf92f3577b34da6a3ce929d0e0e4737';
  const r = await request(app.url('/fault/bad-query'), { headers: { traceparent: `00-${traceId}-00f067aa0ba902b8-01` } });
  await r.body.text();
  assert.equal(r.statusCode, 500);
  const server = await waitFor('the exported server span', () => spans.find((s) => s.traceId === traceId && s.kind === 2));
  const query = await waitFor('the failed query span', () => spans.find((s) => s.traceId === traceId && s.kind === 3));
  assert.equal(query.parentSpanId, server.spanId);
  assert.equal(query.status?.code, 2, JSON.stringify(query.status));
  assert.match(query.status?.message ?? '', /no such table/);
});

test('a span export that fails is a line of the app log, in its format', async () => {
  refuseSpans = true;
  try {
    const r = await get('/hello');
    assert.equal(r.status, 200);
    const line = await waitFor('the export error line', () => logLines().find((l) => l.component === 'opentelemetry'));
    assert.equal(line.level, 'error');
    assert.match(String(line.msg), /^opentelemetry: /);
    assert.equal(line.service, 'orders');
  } finally {
    refuseSpans = false;
  }
});

test('an OTEL_TRACES_EXPORTER name the SDK does not know is a warning, not silence', async () => {
  const warnings: string[] = [];
  const quiet = () => undefined;
  const log = { warn: (_f: object, msg: string) => void warnings.push(msg), error: quiet, info: quiet, debug: quiet, trace: quiet };
  assert.equal(await initTracing({ name: 'orders', version: '1.0.0', log }, { OTEL_TRACES_EXPORTER: 'otlp-http' }), undefined);
  assert.deepEqual(warnings, ['OTEL_TRACES_EXPORTER: no exporter named "otlp-http" (otlp, console, zipkin, none); traces are not exported']);
});

test('log-level debug reaches the workers, and workers started later; metadata and secrets in app log calls', async () => {
  const typo = await app.run(['log-level', 'loud']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^error: command-argument value 'loud' is invalid for argument 'level'\. Allowed choices are trace, debug, info, warn, error, fatal, silent\.$/m);
  const lv = await app.run(['log-level', 'debug']);
  assert.equal(lv.code, 0, lv.stderr);
  assert.match(lv.stdout, /2 worker\(s\)/);
  const level = await app.run(['rpc', 'Log.level']);
  assert.equal(JSON.parse(level.stdout), 'debug');
  // New workers (a rolling restart here; a crash or an upgrade alike) keep the level set at runtime.
  const pidBefore = JSON.parse((await app.run(['rpc', 'process.pid'])).stdout) as number;
  const restarted = await app.run(['restart']);
  assert.equal(restarted.code, 0, restarted.stderr);
  const after = await app.run(['rpc', '[process.pid, Log.level]']);
  const [pidAfter, levelAfter] = JSON.parse(after.stdout) as [number, string];
  assert.notEqual(pidAfter, pidBefore, 'a new worker answers');
  assert.equal(levelAfter, 'debug');
  const calls = [
    `Log.metadata({ region: 'eu-1' })`,
    `Log.error({ order_id: 'o-1', reason: 'card declined' }, 'failed')`,
    `Log.info({ DATABASE_URL: 'postgres://orders:${SECRETS[0]}@db:5432/orders' }, 'config')`,
    `Log.warn('retrying postgres://orders:${SECRETS[1]}@db:5432/orders')`,
    `Log.info({ headers: { authorization: 'Bearer ${SECRETS[2]}', cookie: 'sid=${SECRETS[3]}' }, password: '${SECRETS[4]}' }, 'incoming')`,
  ];
  const r = await app.run(['rpc', calls.join('; ') + '; true']);
  assert.equal(r.code, 0, r.stderr);
  const failed = await waitFor('the error line', () => logLines().find((l) => l.msg === 'failed'));
  assert.equal(failed.order_id, 'o-1');
  assert.equal(failed.reason, 'card declined');
  assert.equal(failed.region, 'eu-1');
  await get('/hello', { authorization: `Bearer ${SECRETS[2]}` });
  await app.run(['log-level', 'info']);
});

test('request-log switches which requests get a line on every worker at runtime, and in workers started later', async () => {
  const typo = await app.run(['request-log', 'some']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^error: command-argument value 'some' is invalid for argument 'mode'\. Allowed choices are on, all, errors, off\.$/m);
  const send = async (prefix: string, n: number) => {
    for (let i = 0; i < n; i++) assert.equal((await get('/hello', { 'x-request-id': `${prefix}-${i}` })).status, 200);
  };
  try {
    const errors = await app.run(['request-log', 'errors']);
    assert.equal(errors.code, 0, errors.stderr);
    assert.match(errors.stdout, /^request lines: errors on 2 worker\(s\)$/m);
    await send('rl-errors', 10);
    assert.equal((await get('/nope', { 'x-request-id': 'rl-errors-404' })).status, 404);
    // New workers (a rolling restart here; a crash or an upgrade alike) keep the mode set at runtime.
    const restarted = await app.run(['restart']);
    assert.equal(restarted.code, 0, restarted.stderr);
    await send('rl-restarted', 10);
    assert.equal((await app.run(['request-log', 'all'])).code, 0);
    await send('rl-all', 10);
    await waitFor('the last line of "all"', () => logLines().some((l) => l.req_id === 'rl-all-9'));
    const ids = new Set(logLines().filter((l) => l.msg === 'request').map((l) => String(l.req_id)));
    assert.ok(ids.has('rl-errors-404'), 'an error keeps its line');
    for (let i = 0; i < 10; i++) {
      assert.ok(!ids.has(`rl-errors-${i}`), `no line for rl-errors-${i}`);
      assert.ok(!ids.has(`rl-restarted-${i}`), `no line for rl-restarted-${i} from a worker started later`);
      assert.ok(ids.has(`rl-all-${i}`), `a line for rl-all-${i}`);
    }
  } finally {
    await app.run(['request-log', 'on']);
  }
});

test('a worker killed by a thrown error: one crash report, one restart, crashes +1 in /metrics, webhook retried', async () => {
  const crashesBefore = await metric('slipway_worker_crashes_total');
  const restartsBefore = await metric('slipway_worker_restarts_total');
  const before = (await app.run(['crashes', '--json'])).stdout;
  assert.deepEqual(JSON.parse(before), []);
  const pids = await app.workerPids();
  const r = await app.run(['rpc', `(setTimeout(() => { throw new Error('boom: thrown on purpose') }, 20), process.pid)`]);
  const victim = Number(r.stdout.trim());
  assert.ok(pids.includes(victim));
  await waitFor('a replacement worker', async () => {
    const now = await app.workerPids();
    return now.length === 2 && !now.includes(victim) && (await app.run(['ready', '--quiet'])).code === 0;
  }, 20_000);
  const list = JSON.parse((await app.run(['crashes', '--json'])).stdout) as Array<{ pid: number; error: string; file: string }>;
  assert.equal(list.length, 1);
  assert.equal(list[0]!.pid, victim);
  assert.match(list[0]!.error, /boom: thrown on purpose/);
  const report = JSON.parse(readFileSync(path.join(app.root, 'log', 'crash', list[0]!.file), 'utf8'));
  assert.equal(report.release.version, '1.0.0');
  assert.equal(report.node, process.version);
  assert.ok(report.memory.rss > 0 && report.uptime_s > 0);
  assert.ok(report.lastLogs.length > 0);
  assert.match(report.error.stack, /boom/);
  assert.equal(await metric('slipway_worker_crashes_total'), crashesBefore + 1);
  assert.equal(await metric('slipway_worker_restarts_total'), restartsBefore + 1);
  assert.equal(crashPosts.length, 1, 'the webhook got the report after one retry');
  assert.equal(crashPosts[0]!.attempt, 2);
  assert.equal(crashPosts[0]!.authorization, `Bearer ${SECRETS[5]}`);
  assert.match(crashPosts[0]!.body.error.message, /boom/);
  const table = await app.run(['crashes']);
  assert.match(table.stdout, /boom: thrown on purpose/);
  const show = await app.run(['crashes', 'show', 'latest']);
  assert.match(show.stdout, /"uncaughtException"/);
});

test('/metrics aggregates both workers: request histogram by route and status, in-flight, readiness, release, lag, heap', async () => {
  for (let i = 0; i < 20; i++) await get('/hello');
  const text = (await get('/metrics')).text;
  assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/hello",status_code="200"\} \d+/);
  assert.match(text, /^http_requests_in_flight \d+/m);
  assert.match(text, /^slipway_workers_ready 2$/m);
  assert.match(text, /^slipway_release_info\{name="orders",version="1.0.0"/m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  assert.match(text, /^nodejs_heap_size_used_bytes /m);
  assert.match(text, /^slipway_upgrades_total 0$/m);
  const viaBin = await app.run(['metrics']);
  assert.equal(viaBin.code, 0);
  assert.match(viaBin.stdout, /slipway_worker_crashes_total/);
});

const order = () => ({ method: 'POST' as const, path: '/orders', body: JSON.stringify({ item: 'widget', quantity: 12 }) });

test('flags set new_pricing off under load: every worker answers the old way within 1 s', async () => {
  const on = await app.run(['flags', 'set', 'new_pricing', 'on']);
  assert.equal(on.code, 0, on.stderr);
  await sleep(600);
  const load = startLoad({ origin: app.url(''), connections: 4, durationMs: 6000, path: order, maxRequests: 6000 });
  const seen: Array<{ at: number; pricing: string; price: number }> = [];
  // Sample on fresh connections too, so both workers are asked.
  const sampler = (async () => {
    const end = Date.now() + 5800;
    while (Date.now() < end) {
      const r = await request(app.url('/orders'), { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ item: 'probe', quantity: 12 }) });
      const body = JSON.parse(await r.body.text()) as { price_cents: number };
      seen.push({ at: Date.now(), pricing: String(r.headers['x-pricing']), price: body.price_cents });
      await sleep(20);
    }
  })();
  await sleep(1500);
  const offAt = Date.now();
  const off = await app.run(['flags', 'set', 'new_pricing', 'off']);
  assert.equal(off.code, 0, off.stderr);
  const setDone = Date.now();
  const res = await load.done;
  await sampler;
  assert.equal(res.failed, 0, JSON.stringify(res.errors));
  const beforeOff = seen.filter((s) => s.at < offAt);
  assert.ok(beforeOff.length > 5 && beforeOff.every((s) => s.pricing === 'new' && s.price === 5400), 'new pricing while on');
  const late = seen.filter((s) => s.at > setDone + 1000);
  assert.ok(late.length > 5, 'samples after the switch');
  assert.ok(late.every((s) => s.pricing === 'classic' && s.price === 6000), `old behaviour within 1 s: ${JSON.stringify(late.filter((s) => s.pricing !== 'classic').slice(0, 3))}`);
});

test('a flag survives a restart and an upgrade; percent and --for rules', async () => {
  assert.equal((await app.run(['flags', 'set', 'new_pricing', 'on'])).code, 0);
  const pricing = async () => {
    const r = await request(app.url('/orders'), { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ item: 'p', quantity: 12 }) });
    await r.body.text();
    return { pricing: r.headers['x-pricing'], release: r.headers['x-release'] };
  };
  await sleep(600);
  assert.equal((await pricing()).pricing, 'new');
  const rs = await app.run(['restart']);
  assert.equal(rs.code, 0, rs.stderr);
  for (let i = 0; i < 4; i++) assert.equal((await pricing()).pricing, 'new');
  assert.equal((await app.run(['install', v110.tarball])).code, 0);
  const up = await app.run(['upgrade', '1.1.0']);
  assert.equal(up.code, 0, up.stderr);
  for (let i = 0; i < 4; i++) assert.deepEqual(await pricing(), { pricing: 'new', release: '1.1.0' });
  assert.equal(await metric('slipway_upgrades_total'), 1);

  // 0% plus one named customer: only that customer gets it.
  assert.equal((await app.run(['flags', 'set', 'new_pricing', '0%'])).code, 0);
  assert.equal((await app.run(['flags', 'set', 'new_pricing', '--for', 'cust-42'])).code, 0);
  await sleep(600);
  const as = async (customer: string) => {
    const r = await request(app.url('/orders'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-customer-id': customer }, body: JSON.stringify({ item: 'p', quantity: 12 }) });
    await r.body.text();
    return r.headers['x-pricing'];
  };
  assert.equal(await as('cust-42'), 'new');
  assert.equal(await as('cust-7'), 'classic');
  const list = await app.run(['flags', 'list', '--json']);
  assert.deepEqual(JSON.parse(list.stdout).new_pricing.for, ['cust-42']);
  const bad = await app.run(['flags', 'set', 'new_pricing', 'sometimes']);
  assert.notEqual(bad.code, 0);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /bad flag value/);

  // unset: the rule is gone and the code's default (classic pricing) answers again, also for the named key.
  const unset = await app.run(['flags', 'unset', 'new_pricing']);
  assert.equal(unset.code, 0, unset.stderr);
  assert.match(unset.stdout, /new_pricing: unset/);
  assert.equal(JSON.parse((await app.run(['flags', 'list', '--json'])).stdout).new_pricing, undefined);
  await sleep(600);
  assert.equal(await as('cust-42'), 'classic');
  const again = await app.run(['flags', 'unset', 'new_pricing', '--json']);
  assert.equal(again.code, 0);
  assert.deepEqual(JSON.parse(again.stdout), { name: 'new_pricing', unset: false });
  const set = await app.run(['flags', 'set', 'other_flag', '40%', '--json']);
  assert.equal(set.code, 0, set.stderr);
  assert.deepEqual(JSON.parse(set.stdout).rule.percent, 40);
  assert.deepEqual(JSON.parse((await app.run(['flags', 'unset', 'other_flag', '--json'])).stdout), { name: 'other_flag', unset: true });
  // A flags file that is not JSON: the file's problem (exit 1), one line, and it is left as it was.
  const flagsFile = path.join(app.root, 'var', 'flags.json');
  const good = readFileSync(flagsFile, 'utf8');
  writeFileSync(flagsFile, '{"flags": {');
  const broken = await app.run(['flags', 'set', 'new_pricing', 'on']);
  assert.equal(broken.code, 1);
  assert.equal(broken.stderr.trim().split('\n').length, 1);
  assert.match(broken.stderr, /flags\.json: not valid JSON/);
  assert.equal(readFileSync(flagsFile, 'utf8'), '{"flags": {');
  writeFileSync(flagsFile, good);
  const badName = await app.run(['flags', 'unset', '9lives']);
  assert.equal(badName.code, 2);
  assert.equal(badName.stderr.trim().split('\n').length, 1);
});

test('request lines past the cap: errors keep theirs, the rest are counted, and lines plus counts add up to every request through a stop', async () => {
  const capped = await deploy(v100, { PORT: String(await freePort()), SLIPWAY_WORKERS: '2', SLIPWAY_REQUEST_LOG_RATE: '5' });
  assert.equal((await capped.daemon()).code, 0);
  const hit = async (p: string) => (await get(p, {}, capped)).status;
  // Four at a time, so both workers serve, far over 5 lines a second each.
  for (let i = 0; i < 60; i++) {
    const statuses = await Promise.all([hit('/hello'), hit('/hello'), hit('/hello'), hit(i % 20 === 0 ? '/nope' : '/hello')]);
    assert.ok(statuses.every((s) => s === 200 || s === 404));
  }
  const counted = await metric('http_request_duration_seconds_count', capped);
  assert.ok(counted >= 240, `the histogram counted ${counted}`);
  assert.equal((await capped.run(['stop'])).code, 0);
  const lines = logLines(capped);
  const requests = lines.filter((l) => l.msg === 'request');
  const closing = lines.filter((l) => l.component === 'request-log' && typeof l.unlogged === 'number');
  const total = requests.length + [...requests, ...closing].reduce((n, l) => n + ((l.unlogged as number | undefined) ?? 0), 0);
  assert.equal(total, counted, `${requests.length} lines and their counts against ${counted} requests in /metrics`);
  assert.ok(requests.length < counted / 2, `${requests.length} lines for ${counted} requests`);
  assert.equal(requests.filter((l) => l.status === 404).length, 3, 'every error has its line');
  assert.ok(lines.some((l) => l.component === 'request-log' && l.rate === 5), 'the cap is said');
});

test('no secret value in any log file', async () => {
  await sleep(300);
  const files = logFiles(app.root);
  assert.ok(files.length >= 2);
  let redactedSeen = 0;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const s of SECRETS) assert.ok(!text.includes(s), `${s} found in ${f}`);
    redactedSeen += text.split('[redacted]').length - 1;
  }
  assert.ok(redactedSeen >= 4, 'the secret fields were logged, redacted');
});
