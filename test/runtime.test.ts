// The runtime's per-request hot path, in process, on real sockets: context through awaits (both
// context modes), one request line per request (finished, aborted, pipelined; made with the batch
// but kept in order), the metrics path left alone, the batched fd writer against a slow reader and
// appending to a rotating file itself, and the drain's request tracking through Node's channels.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { bindRequest, currentRequest, instrumentServer, traceHeaders, newIdPair, newSpanId, newTraceId, requestContextPlugin, requestStorage, setContextMode, PAIR_SPAN_AT as SPAN_AT, PAIR_TRACE_AT as TRACE_AT } from '../src/runtime/context.ts';
import { createLogger, requestLineText, type RequestLineParts } from '../src/runtime/log.ts';
import { WorkerMetrics } from '../src/runtime/metrics.ts';
import { lineSplitter } from '../src/supervisor/logs.ts';
import { toJson } from '../src/runtime/worker.ts';
import { AsyncHooksContextStorage, PromiseContextStorage } from '../src/runtime/request-storage.ts';

type Line = Record<string, unknown>;

/** Send GET `path` with this x-request-id, and close the connection 50 ms later, before the answer. */
async function hangUpDuring(port: number, path: string, id: string): Promise<void> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  sock.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\n\r\n`);
  await sleep(50);
  sock.destroy();
}

function logger(lines: Line[]) {
  return createLogger({ name: 'orders', version: '9.9.9', write: (text) => text.split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Line)) });
}

const storages: Array<[string, <T extends object>() => PromiseContextStorage<T> | AsyncHooksContextStorage<T>]> = [
  ['PromiseContextStorage', () => new PromiseContextStorage()],
  ['AsyncHooksContextStorage', () => new AsyncHooksContextStorage()],
];
for (const [name, make] of storages) {
  describe(name, () => {
    it('each of 200 concurrent runs sees its own store after awaits, timers, Promise.all and async iteration; nothing outside', async () => {
      const s = make<{ id: number }>();
      let wrong = 0;
      const check = (id: number) => void (s.getStore()?.id !== id && wrong++);
      let shared: Promise<unknown> | undefined;
      const handler = async (id: number) => {
        check(id);
        await sleep(Math.random() * 5);
        check(id);
        await Promise.all([sleep(1), (async () => (await null, check(id)))()]);
        check(id);
        await (shared ??= sleep(3));
        check(id);
        await Promise.reject(new Error('x')).catch(() => check(id));
        await new Promise<void>((r) => setImmediate(r));
        check(id);
        for await (const _ of (async function* () {
          yield 1;
          await sleep(1);
          yield 2;
        })())
          check(id);
        return s.getStore()?.id;
      };
      const ids = Array.from({ length: 200 }, (_, i) => i + 1);
      const out = await Promise.all(ids.map((id) => s.run({ id }, handler, id)));
      assert.deepEqual(out, ids);
      assert.equal(wrong, 0);
      assert.equal(s.getStore(), undefined);
      await new Promise<void>((r) => setTimeout(() => (assert.equal(s.getStore(), undefined), r()), 1));
      if (s instanceof PromiseContextStorage) s.disable();
    });

    it('bind carries the store into a callback API', async () => {
      const s = make<{ id: number }>();
      const seen = await s.run({ id: 7 }, () => new Promise<number | undefined>((resolve) => setTimeout(s.bind(() => resolve(s.getStore()?.id)), 2)));
      assert.equal(seen, 7);
      if (s instanceof PromiseContextStorage) s.disable();
    });
  });
}

describe('instrumentServer', () => {
  const lines: Line[] = [];
  const log = logger(lines);
  const observed: Array<[string, string, number]> = [];
  let inFlight = 0;
  const server = http.createServer(async (req, res) => {
    if (req.method === 'POST') {
      // Like a framework's body parser: the handler runs from the request's 'end' event.
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', async () => {
        await sleep(1);
        log.info({ body }, 'handled a body');
        res.end('ok');
      });
      return;
    }
    if (req.url === '/own-id-set') {
      res.setHeader('X-Request-Id', 'app-1');
      return res.end('ok');
    }
    if (req.url === '/own-id-head') {
      res.writeHead(200, { 'X-Request-Id': 'app-2', 'content-type': 'text/plain' });
      return res.end('ok');
    }
    if (req.url === '/outgoing') {
      // The headers an outgoing call would carry, after an await.
      await sleep(1);
      return res.end(JSON.stringify(traceHeaders()));
    }
    const s = currentRequest()!;
    s.route = req.url!.split('?')[0]!.replace(/\/\d+$/, '/:n');
    await sleep(req.url === '/slow' ? 300 : 1);
    log.info({ step: 'after await' }, 'app line');
    if (req.url === '/timer') setTimeout(bindRequest(() => (log.info('from a bound timer'), res.end('ok'))), 1);
    else res.end('ok');
  });
  instrumentServer(server, {
    log,
    requestLog: true,
    observer: { begin: () => void inFlight++, end: (m, route, status) => void (inFlight--, observed.push([m, route, status])) },
    intercept: { path: '/metrics', handle: (_req, res) => res.end('metrics') },
  });
  let port = 0;
  const ready = new Promise<void>((r) => server.listen(0, '127.0.0.1', () => ((port = (server.address() as net.AddressInfo).port), r())));
  after(() => new Promise<void>((r) => server.close(() => r())));
  const flushed = () => new Promise<void>((r) => log.flush(() => r()));

  it('one request line per request with its ids; app lines after an await carry them; the x-request-id header matches', async () => {
    await ready;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`http://127.0.0.1:${port}/items/42`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    assert.equal(await res.text(), 'ok');
    const id = res.headers.get('x-request-id');
    await sleep(30);
    await flushed();
    const mine = lines.filter((l) => l.req_id === id);
    assert.deepEqual(mine.map((l) => l.msg), ['app line', 'request']);
    const [app, request] = mine as [Line, Line];
    assert.equal(app.trace_id, traceId);
    assert.equal(app.span_id, request.span_id);
    assert.equal(request.trace_id, traceId);
    assert.equal(request.route, '/items/:n');
    assert.equal(request.status, 200);
    assert.equal(request.release, '9.9.9');
    assert.equal(request.aborted, undefined);
    assert.deepEqual(observed.at(-1), ['GET', '/items/:n', 200]);
  });

  it('without a traceparent: a new trace, made when first asked for, the same in the app line and the request line; each request its own', async () => {
    await ready;
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/items/${i}`);
      assert.equal(await res.text(), 'ok');
      ids.push(res.headers.get('x-request-id')!);
    }
    await sleep(30);
    await flushed();
    const traces = ids.map((id) => {
      const [app, request] = lines.filter((l) => l.req_id === id) as [Line, Line];
      assert.equal(app.msg, 'app line');
      assert.equal(request.msg, 'request');
      assert.match(String(request.trace_id), /^[0-9a-f]{32}$/);
      assert.match(String(request.span_id), /^[0-9a-f]{16}$/);
      assert.equal(app.trace_id, request.trace_id);
      assert.equal(app.span_id, request.span_id);
      return request.trace_id;
    });
    assert.notEqual(traces[0], traces[1]);
  });

  it('traceHeaders() propagates the trace: same trace id and flags, the request span as parent, the tracestate; a new trace without a valid traceparent; none outside a request', async () => {
    await ready;
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const outgoing = async (headers: Record<string, string>) => {
      const res = await fetch(`http://127.0.0.1:${port}/outgoing`, { headers });
      return { sent: JSON.parse(await res.text()) as { traceparent?: string; tracestate?: string }, id: res.headers.get('x-request-id') };
    };
    const given = await outgoing({ traceparent: `00-${traceId}-b7ad6b7169203331-01`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    assert.equal(given.sent.tracestate, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'the caller\'s tracestate is passed on');
    const sampled = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(given.sent.traceparent ?? '');
    assert.ok(sampled, `a W3C traceparent: ${given.sent.traceparent}`);
    assert.equal(sampled![1], traceId);
    assert.notEqual(sampled![2], 'b7ad6b7169203331', 'the parent of the outgoing call is this request, not its caller');
    assert.equal(sampled![3], '01');
    const unsampled = await outgoing({ traceparent: `00-${traceId}-b7ad6b7169203331-00` });
    assert.match(unsampled.sent.traceparent!, /-00$/);
    // An invalid traceparent starts a new trace, and its tracestate is dropped with it.
    const invalid = await outgoing({ traceparent: `00-${'0'.repeat(32)}-b7ad6b7169203331-01`, tracestate: 'congo=t61rcWkgMzE' });
    assert.doesNotMatch(invalid.sent.traceparent!, /^00-0{32}-/);
    assert.equal(invalid.sent.tracestate, undefined);
    const fresh = await outgoing({});
    assert.equal(fresh.sent.tracestate, undefined);
    const [, freshTrace, freshSpan] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(fresh.sent.traceparent ?? '') ?? [];
    assert.ok(freshTrace && freshTrace !== traceId && freshSpan, `a new trace: ${fresh.sent.traceparent}`);
    // The request line names the same span the outgoing call points to.
    await sleep(30);
    await flushed();
    const line = lines.find((l) => l.req_id === given.id && l.msg === 'request')!;
    assert.equal(line.span_id, sampled![2]);
    assert.deepEqual(traceHeaders(), {});
  });

  it('x-request-id is written once: ours, or the one the app set itself (setHeader or writeHead, any case)', async () => {
    const head = async (path: string) => {
      const sock = net.connect(port, '127.0.0.1');
      await new Promise((r) => sock.on('connect', r));
      sock.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      let text = '';
      sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
      await new Promise((r) => sock.on('close', r));
      return text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n').filter((l) => /^x-request-id:/i.test(l));
    };
    const ours = await head('/items/5');
    assert.equal(ours.length, 1);
    assert.match(ours[0]!, /^x-request-id: \S+$/i);
    assert.deepEqual((await head('/own-id-set')).map((l) => l.split(': ')[1]), ['app-1']);
    assert.deepEqual((await head('/own-id-head')).map((l) => l.split(': ')[1]), ['app-2']);
  });

  it('a POST whose handler runs from the body stream events keeps the ids', async () => {
    // Sent in two parts, so that the body's events come from later socket reads.
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.on('connect', r));
    sock.write('POST /items HTTP/1.1\r\nhost: x\r\nx-request-id: body-1\r\ncontent-length: 10\r\nconnection: close\r\n\r\nhello');
    await sleep(20);
    let got = '';
    sock.on('data', (c) => (got += c.toString()));
    sock.write('world');
    await new Promise((r) => sock.on('close', r));
    assert.match(got, /^HTTP\/1\.1 200/);
    await sleep(30);
    await flushed();
    const line = lines.find((l) => l.msg === 'handled a body');
    assert.equal(line?.body, 'helloworld');
    assert.equal(line?.req_id, 'body-1');
  });

  it('Fastify: handlers after a body, after awaits and onResponse hooks keep the ids; a GET keeps the prototype emit', async () => {
    const { default: Fastify } = await import('fastify');
    const flines: Line[] = [];
    const flog = logger(flines);
    const app = Fastify();
    await app.register(requestContextPlugin());
    const ownEmit: Record<string, [boolean, boolean]> = {};
    app.get('/plain', async (req, reply) => {
      ownEmit.plain = [Object.hasOwn(req.raw, 'emit'), Object.hasOwn(reply.raw, 'emit')];
      await sleep(1);
      flog.info('plain handler');
      return 'ok';
    });
    app.post('/body', async (req, reply) => {
      ownEmit.body = [Object.hasOwn(req.raw, 'emit'), Object.hasOwn(reply.raw, 'emit')];
      await sleep(1);
      flog.info({ item: (req.body as { item: string }).item }, 'body handler');
      return 'ok';
    });
    app.get('/hooked', { onResponse: (_req, _reply, done) => (flog.info('on response'), done()) }, async () => 'ok');
    await app.ready();
    instrumentServer(app.server, { log: flog, requestLog: true });
    await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', () => r()));
    try {
      const at = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
      const ids: Record<string, string> = {};
      for (const [name, init] of [['plain', {}], ['body', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'book' }) }], ['hooked', {}]] as const) {
        const res = await fetch(`${at}/${name}`, init);
        assert.equal(await res.text(), 'ok');
        ids[name] = res.headers.get('x-request-id')!;
      }
      await sleep(30);
      await new Promise<void>((r) => flog.flush(() => r()));
      const reqId = (msg: string) => flines.find((l) => l.msg === msg)?.req_id;
      assert.equal(reqId('plain handler'), ids.plain);
      assert.equal(reqId('body handler'), ids.body);
      assert.equal(reqId('on response'), ids.hooked);
      assert.deepEqual(flines.filter((l) => l.msg === 'request').map((l) => [l.route, l.req_id]), [['/plain', ids.plain], ['/body', ids.body], ['/hooked', ids.hooked]]);
      // Only a request with a body runs its events through an emit of its own (context.ts).
      assert.deepEqual(ownEmit, { plain: [false, false], body: [true, false] });
    } finally {
      await app.close();
    }
  });

  it('a callback wrapped with bindRequest keeps the ids', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/timer`);
    await res.text();
    await sleep(30);
    await flushed();
    const line = lines.find((l) => l.msg === 'from a bound timer');
    assert.equal(line?.req_id, res.headers.get('x-request-id'));
  });

  it('pipelined requests on one connection: one line each, in order; /metrics is answered and not logged', async () => {
    const before = lines.filter((l) => l.msg === 'request').length;
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (c) => (got += c.toString()));
    sock.write('GET /p/1 HTTP/1.1\r\nhost: x\r\nx-request-id: pipe-1\r\n\r\nGET /p/2 HTTP/1.1\r\nhost: x\r\nx-request-id: pipe-2\r\n\r\nGET /metrics HTTP/1.1\r\nhost: x\r\n\r\nGET /p/3 HTTP/1.1\r\nhost: x\r\nx-request-id: pipe-3\r\nconnection: close\r\n\r\n');
    await new Promise((r) => sock.on('close', r));
    assert.equal(got.match(/HTTP\/1\.1 200/g)?.length, 4);
    assert.match(got, /metrics/);
    await sleep(30);
    await flushed();
    const reqLines = lines.filter((l) => l.msg === 'request').slice(before);
    assert.deepEqual(reqLines.map((l) => l.req_id), ['pipe-1', 'pipe-2', 'pipe-3']);
    assert.ok(!lines.some((l) => l.url === '/metrics'));
  });

  it('a client that goes away mid-request: one line with aborted:true, in-flight back to 0', async () => {
    await hangUpDuring(port, '/slow', 'gone-1');
    await sleep(400);
    await flushed();
    const mine = lines.filter((l) => l.req_id === 'gone-1' && l.msg === 'request');
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.aborted, true);
    assert.equal(inFlight, 0);
  });

  it('the server-wide context mode can be switched (async-hooks) and back', async () => {
    setContextMode('async-hooks');
    const res = await fetch(`http://127.0.0.1:${port}/items/7`);
    await res.text();
    setContextMode('promises');
    await sleep(30);
    await flushed();
    assert.equal(lines.find((l) => l.msg === 'app line' && l.req_id === res.headers.get('x-request-id'))?.trace_id !== undefined, true);
    assert.equal(requestStorage.getStore(), undefined);
  });
});

describe('instrumentServer with request lines for errors and slow requests only (SLIPWAY_REQUEST_LOG=errors)', () => {
  it('no line for a quick success; a line for 4xx, 5xx, a slow response and an aborted one; metrics see them all', async () => {
    const lines: Line[] = [];
    const log = logger(lines);
    const observed: number[] = [];
    const server = http.createServer(async (req, res) => {
      if (req.url === '/slow' || req.url === '/hang') await sleep(req.url === '/slow' ? 300 : 600);
      res.statusCode = req.url === '/missing' ? 404 : req.url === '/boom' ? 500 : 200;
      res.end('x');
    });
    instrumentServer(server, { log, requestLog: { rate: 0, slowMs: 200 }, observer: { begin: () => undefined, end: (_m, _r, status) => void observed.push(status) } });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    for (const url of ['/ok', '/missing', '/boom', '/slow', '/ok']) await (await fetch(`http://127.0.0.1:${port}${url}`, { headers: { 'x-request-id': `e${url}` } })).text();
    await hangUpDuring(port, '/hang', 'e/hang');
    await sleep(700);
    await new Promise<void>((r) => log.flush(() => r()));
    const got = lines.filter((l) => l.msg === 'request').map((l) => [l.req_id, l.status, l.aborted ?? false]);
    assert.deepEqual(got, [['e/missing', 404, false], ['e/boom', 500, false], ['e/slow', 200, false], ['e/hang', 200, true]]);
    assert.equal(observed.length, 6, 'the histogram still sees every request');
  });
});

describe('instrumentServer with a cap on request lines (SLIPWAY_REQUEST_LOG=on, the default)', () => {
  for (const context of ['promises', 'async-hooks'] as const)
  it(`past the rate, quick successes are counted, not lined; errors always get a line; the count rides on the next line (context: ${context})`, async () => {
    after(() => setContextMode('promises'));
    const lines: Line[] = [];
    const log = logger(lines);
    const observed: number[] = [];
    const server = http.createServer((req, res) => {
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end('x');
    });
    const instrumented = instrumentServer(server, { log, requestLog: { rate: 5, slowMs: 1000 }, context, observer: { begin: () => undefined, end: (_m, _r, status) => void observed.push(status) } });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    const get = async (url: string) => void (await (await fetch(`http://127.0.0.1:${port}${url}`)).text());
    // A burst far over 5 a second: the bucket's 5 (and what trickles in meanwhile) get lines.
    for (let i = 0; i < 40; i++) await get('/ok');
    await get('/missing');
    for (let i = 0; i < 40; i++) await get('/ok');
    await get('/missing');
    // After a quiet second the bucket is full again: the next success gets its line.
    await sleep(1200);
    await get('/ok');
    // A burst that ends in successes: switching to a line for every request (bin/NAME
    // request-log all) says how many got none, and from then on every request gets one.
    for (let i = 0; i < 40; i++) await get('/ok');
    instrumented.setRequestLog(true);
    for (let i = 0; i < 3; i++) await get('/ok');
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => log.flush(() => r()));
    const requests = lines.filter((l) => l.msg === 'request');
    const closing = lines.filter((l) => l.component === 'request-log' && l.unlogged !== undefined);
    assert.equal(closing.length, 1, 'one count, at the switch');
    const counted = requests.reduce((n, l) => n + 1 + ((l.unlogged as number | undefined) ?? 0), 0) + (closing[0]!.unlogged as number);
    assert.equal(counted, 126, 'every request is a line or counted in a later line\'s "unlogged"');
    assert.equal(observed.length, 126, 'the metrics see every request');
    assert.deepEqual(requests.slice(-3).map((l) => [l.status, l.unlogged]), [[200, undefined], [200, undefined], [200, undefined]], 'after the switch, a line each');
    const errors = requests.filter((l) => l.status === 404);
    assert.equal(errors.length, 2, 'an error always gets its line');
    assert.ok((errors[0]!.unlogged as number) >= 20, JSON.stringify(errors[0]));
    const successes = requests.filter((l) => l.status === 200);
    assert.ok(successes.length >= 5 && successes.length < 40, `${successes.length} lines for 81 successes`);
    const afterQuiet = requests.find((l) => l.status === 200 && requests.indexOf(l) > requests.indexOf(errors[1]!))!;
    assert.equal(afterQuiet.unlogged, undefined, 'nothing unlogged since the error before it');
    const notices = lines.filter((l) => l.component === 'request-log' && l.unlogged === undefined);
    assert.equal(notices.length, 1, 'the cap is said once a minute');
    assert.match(notices[0]!.msg as string, /more than 5 requests a second/);
    assert.equal(notices[0]!.req_id, undefined, 'the notice is about the worker, not the request that met the cap');
  });
});

describe('FdWriter (the worker side of log capture)', () => {
  it('a slow reader loses nothing and sees lines in order; the event loop is never blocked', async () => {
    // A child process writes 20,000 lines through the real logger to its stdout pipe; we read slowly.
    const script = `
      import { createLogger } from ${JSON.stringify(new URL('../src/runtime/log.ts', import.meta.url).href)};
      const log = createLogger({ name: 'w', version: '1' });
      let i = 0, maxGap = 0, last = performance.now();
      const tick = setInterval(() => { const now = performance.now(); maxGap = Math.max(maxGap, now - last); last = now; }, 5);
      const burst = () => { for (let k = 0; k < 500 && i < 20000; k++) log.info({ n: i++ }, 'line'); if (i < 20000) setImmediate(burst); else log.flush(() => { clearInterval(tick); process.stderr.write('maxgap ' + Math.round(maxGap) + '\\n'); }); };
      burst();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 2);
    });
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 0, err);
    const ns = text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { n: number }).n);
    assert.equal(ns.length, 20000);
    assert.ok(ns.every((n, i) => n === i), 'lines out of order');
    const gap = Number(/maxgap (\d+)/.exec(err)?.[1]);
    assert.ok(gap < 1000, `event loop blocked for ${gap} ms while the reader was slow`);
  });
});

it('request histogram: one series per method, route and status; past 2000 label sets one overflow series', async () => {
  const m = new WorkerMetrics();
  m.begin();
  m.end('GET', '/hello', 200, 0.002);
  m.begin();
  m.end('GET', '/hello', 200, 0.02);
  m.begin();
  m.end('POST', '/hello', 500, 0.2);
  for (let i = 0; i < 2100; i++) m.end('GET', `/wild/${i}`, 200, 0.001);
  const text = await m.text();
  assert.match(text, /http_request_duration_seconds_count\{method="GET",route="\/hello",status_code="200"\} 2\n/);
  assert.match(text, /http_request_duration_seconds_bucket\{method="GET",route="\/hello",status_code="200",le="0\.005"\} 1\n/);
  assert.match(text, /http_request_duration_seconds_count\{method="POST",route="\/hello",status_code="500"\} 1\n/);
  assert.match(text, /http_request_duration_seconds_count\{method="OTHER",route="overflow",status_code="other"\} 102\n/);
  assert.equal(text.match(/http_request_duration_seconds_count\{/g)?.length, 2001);
  // A registry reset zeroes the series; samples after it are counted again.
  await m.registry.resetMetrics();
  m.end('GET', '/hello', 200, 0.002);
  const after = await m.text();
  assert.match(after, /http_request_duration_seconds_count\{method="GET",route="\/hello",status_code="200"\} 1\n/);
  assert.match(after, /http_request_duration_seconds_count\{method="POST",route="\/hello",status_code="500"\} 0\n/);
});

it("default metrics: prom-client's set, without the GC histogram unless asked for (SLIPWAY_METRICS_GC=on)", async () => {
  const { Registry, collectDefaultMetrics } = await import('prom-client');
  const theirs = new Registry();
  collectDefaultMetrics({ register: theirs });
  const names = async (r: InstanceType<typeof Registry>) => (await r.getMetricsAsJSON()).map((m) => m.name);
  const expected = (await names(theirs)).filter((n) => n !== 'nodejs_gc_duration_seconds');
  assert.ok(expected.length >= 20, `prom-client's defaults: ${expected.join(', ')}`);
  const ours = await names(new WorkerMetrics().registry);
  for (const n of expected) assert.ok(ours.includes(n), `missing ${n}`);
  assert.ok(!ours.includes('nodejs_gc_duration_seconds'));
  assert.ok((await names(new WorkerMetrics({ gc: true }).registry)).includes('nodejs_gc_duration_seconds'));
});

it("log capture's line splitter: whole lines only, bytes intact when a UTF-8 character is cut between reads", () => {
  const out: Buffer[] = [];
  const split = lineSplitter((t) => out.push(Buffer.isBuffer(t) ? t : Buffer.from(t)));
  const bytes = Buffer.from('héllo wörld\nsecond ✓ line\nthird');
  for (let i = 0; i < bytes.length; i += 3) split.push(bytes.subarray(i, i + 3));
  split.flush();
  assert.equal(Buffer.concat(out).toString(), 'héllo wörld\nsecond ✓ line\nthird\n');
  assert.ok(out.every((b) => b.at(-1) === 0x0a));
  split.push(Buffer.alloc(70 * 1024, 0x61)); // a line longer than 64 KiB is passed on, not held forever
  assert.equal(out.at(-1)!.length, 70 * 1024 + 1);
});

it('trace and span ids: 32 and 16 lowercase hex digits, all different, every digit about equally often', () => {
  const traces = new Set<string>();
  const spans = new Set<string>();
  const digits = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    const pair = newIdPair();
    const m = /^","trace_id":"([0-9a-f]{32})","span_id":"([0-9a-f]{16})$/.exec(pair);
    assert.ok(m, pair);
    traces.add(m[1]!);
    spans.add(m[2]!);
    for (const c of m[1]! + m[2]!) digits.set(c, (digits.get(c) ?? 0) + 1);
    assert.match(newTraceId(), /^[0-9a-f]{32}$/);
    assert.match(newSpanId(), /^[0-9a-f]{16}$/);
  }
  assert.equal(traces.size, 5000);
  assert.equal(spans.size, 5000);
  // 240,000 digits: 15,000 of each expected; a broken generator or hex table is far off.
  assert.equal(digits.size, 16);
  for (const [c, n] of digits) assert.ok(n > 14_000 && n < 16_000, `digit ${c}: ${n} times`);
});

it('request line text: the kept pieces give the same text as building every part, and the JSON a log call would hold', () => {
  const fast = requestLineText();
  const reference = requestLineText({ pieces: false });
  const trace = '0af7651916cd43dd8448eb211c80319c';
  const span = 'b7ad6b7169203331';
  // As the instrumentation makes them: the ids as one text (newIdPair), sliced for the fields.
  const pair = newIdPair();
  const pairTrace = pair.slice(TRACE_AT, TRACE_AT + 32);
  const stores = [
    { id: 'abc-1', traceId: trace, spanId: span, fields: {}, ownId: true },
    { id: 'abc-9', idsText: pair, traceId: pairTrace, spanId: pair.slice(SPAN_AT, SPAN_AT + 16), fields: {}, ownId: true },
    { id: 'client.id:42', traceId: trace, spanId: span, fields: {} },
    { id: 'bad "id" \\ ü', traceId: trace, spanId: span, fields: {} },
    { id: 'abc-2', traceId: trace, spanId: span, fields: { req_id: 'abc-2', trace_id: trace, span_id: span, order_id: 7, password: 'hunter2' }, extended: true, ownId: true },
  ];
  const urls = ['/hello', '/orders/5?x=1', '/a?token=abc123', '/ü/ç', '/"quoted"\\', 'http://u:pw@host/x', '/with space'];
  const routes = ['/hello', '/orders/:id', 'unmatched', '/"r"', '/ü/:n'];
  const bindings = [',"service":"orders","release":"1.0.0","pid":1', ',"service":"orders","release":"1.0.0","pid":1,"region":"eu"', '', ',"service":"naïve 🚀"'];
  const base = Date.UTC(2026, 10, 26, 18, 0, 0);
  let n = 0;
  for (const store of stores)
    for (const url of urls)
      for (const [ri, route] of routes.entries())
        for (const chindings of bindings) {
          n++;
          const r: RequestLineParts = { ...store, method: n % 3 ? 'GET' : 'POST', url, route, status: [200, 201, 404, 503, 599][n % 5]!, ms: [0, 0.0004, 0.0006, 1.5, 12.3456, 999.9996, 1234.5][n % 7]!, aborted: n % 4 === 0, chindings, unlogged: n % 3 === 0 ? n : n % 3 === 1 ? 0 : undefined };
          // Times that cross second boundaries back and forth (a clock step).
          const wall = base + [0, 1, 999, 1000, 61_001, 500][(n + ri) % 6]! - (n % 11 === 0 ? 3000 : 0);
          const line = fast(r, wall);
          assert.equal(line, reference(r, wall));
          assert.ok(line.endsWith('\n'));
          const j = JSON.parse(line) as Record<string, unknown>;
          assert.equal(j.time, new Date(wall).toISOString());
          assert.equal(j.ms, Math.round(r.ms * 1000) / 1000);
          assert.equal(j.status, r.status);
          assert.equal(j.route, route);
          assert.equal(j.method, r.method);
          assert.equal(j.req_id, store.id);
          assert.equal(j.trace_id, store.traceId);
          assert.equal(j.span_id, store.spanId);
          assert.equal(j.aborted, r.aborted ? true : undefined);
          assert.equal(j.unlogged, r.unlogged ? r.unlogged : undefined);
          assert.ok(!line.includes('abc123') && !line.includes('hunter2') && !line.includes(':pw@'), line);
          if (!/[=@ ]/.test(url)) assert.equal(j.url, url);
          if (chindings.includes('region')) assert.equal(j.region, 'eu');
        }
  assert.ok(n > 300);
  // Past the kept pieces' limit (1000 routes), lines are made from pieces not kept: same text.
  for (let i = 0; i < 1100; i++) {
    const r: RequestLineParts = { ...stores[0]!, method: 'GET', url: `/r${i}`, route: `/r${i}/:n`, status: 200, ms: 1, aborted: false, chindings: bindings[0]! };
    assert.equal(fast(r, base + i), reference(r, base + i));
  }
});

it('batches: lines of 1- to 4-byte characters across batch ends and a line longer than a batch arrive whole and in order', async () => {
  const chunks: string[] = [];
  const log = createLogger({ name: 'orders', version: '1.2.3', write: (t) => chunks.push(t) });
  const texts = ['plain', 'ü'.repeat(300), '€'.repeat(250), '😀'.repeat(200), 'x'.repeat(200_000), 'é😀'.repeat(333)];
  // The 200,000-character line once (longer than a batch), the others in turn.
  const pick = (i: number) => texts[i === 4 ? 4 : i % 6 === 4 ? 0 : i % 6]!;
  for (let i = 0; i < 1500; i++) log.info({ i, text: pick(i) }, 'line');
  await new Promise<void>((r) => log.flush(() => r()));
  const lines = chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number; text: string });
  assert.equal(lines.length, 1500);
  lines.forEach((l, i) => {
    assert.equal(l.i, i);
    assert.equal(l.text, pick(i));
  });
  assert.ok(chunks.length > 5, `${chunks.length} batches`);
});

it('request lines are made with their batch, but stay in order with other lines and are in recentLines at once', async () => {
  const text: string[] = [];
  const log = createLogger({ name: 'orders', version: '1.2.3', write: (t) => text.push(t) });
  const store = { id: 'r-1', traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', fields: {}, ownId: true };
  const parts = { chindings: '', endedAt: performance.now() };
  log.requestLine({ ...store, ...parts, method: 'GET', url: '/a?token=abc123', route: '/a', status: 200, ms: 1.5, aborted: false });
  log.requestLine({ ...store, ...parts, id: 'r-2', method: 'GET', url: '/b', route: '/b', status: 404, ms: 0.25, aborted: true });
  assert.deepEqual(log.recentLines().map((l) => (JSON.parse(l) as Line).req_id), ['r-1', 'r-2']);
  log.info({ step: 1 }, 'after');
  await new Promise<void>((r) => log.flush(() => r()));
  const lines = text.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  assert.deepEqual(lines.map((l) => l.msg), ['request', 'request', 'after']);
  assert.deepEqual(lines[0], { level: 'info', time: lines[0]!.time, service: 'orders', release: '1.2.3', pid: process.pid, req_id: 'r-1', trace_id: store.traceId, span_id: store.spanId, method: 'GET', url: '/a?token=[redacted]', route: '/a', status: 200, ms: 1.5, msg: 'request' });
  assert.equal(lines[1]!.aborted, true);
  assert.ok(Math.abs(Date.parse(lines[0]!.time as string) - Date.now()) < 5000);
});

it('a log file gets every line whole and in order over batches of any size, and recentLines keeps the last ones', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(tmpdir(), 'slipway-batches-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'app.log');
  const log = createLogger({ name: 'orders', version: '1.2.3', keepLines: 5, file: { path: file, maxBytes: 64 * 1024 * 1024, requestRotate: () => undefined } });
  const flushed = () => new Promise<void>((r) => log.flush(() => r()));
  const parts = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', fields: {}, ownId: true, chindings: '', method: 'GET', route: '/a', status: 200, ms: 1, aborted: false };
  let n = 0;
  const all: string[] = [];
  // Batches of 1 to 3000 request lines (3000 spill over a 128 KiB batch), each written before
  // the next is made, with another line among them.
  for (const size of [1, 7, 3000, 2, 40]) {
    for (let i = 0; i < size; i++) {
      all.push(`r-${++n}`);
      log.requestLine({ ...parts, id: `r-${n}`, url: `/a?n=${n}&pad=${'x'.repeat(n % 97)}`, endedAt: performance.now() });
    }
    if (size === 7) {
      log.info({ n }, 'between');
      all.push('between');
    }
    await flushed();
    assert.deepEqual(log.recentLines().map((l) => (JSON.parse(l) as Line).req_id ?? 'between'), all.slice(-5));
  }
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  const ids = lines.map((l) => String((JSON.parse(l) as Line).req_id ?? 'between'));
  assert.equal(ids.length, n + 1);
  assert.deepEqual(ids.filter((id) => id !== 'between'), Array.from({ length: n }, (_, i) => `r-${i + 1}`));
  assert.equal(ids.indexOf('between'), 8);
  lines.forEach((l, i) => {
    const k = Number(ids[i]!.slice(2));
    assert.ok(i === 8 || (JSON.parse(l) as Line).url === `/a?n=${k}&pad=${'x'.repeat(k % 97)}`, `line ${i}`);
  });
});

describe('FdWriter appending to a log file itself (workers under daemon)', () => {
  it('asks for rotation before a write would pass the limit, holds lines until reopened, loses none', async () => {
    const { mkdtempSync, readFileSync, renameSync, rmSync, statSync, existsSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { FdWriter } = await import('../src/runtime/log.ts');
    const dir = mkdtempSync(path.join(tmpdir(), 'slipway-fdwriter-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'app.log');
    let rotations = 0;
    const writer: InstanceType<typeof FdWriter> = FdWriter.append(
      {
        path: file,
        maxBytes: 4096,
        // The supervisor's part, a little later: rename, then tell the writer to reopen.
        requestRotate: () =>
          void setTimeout(() => {
            rotations++;
            renameSync(file, `${file}.${rotations}`);
            writer.reopen();
          }, 5),
      },
      1,
    );
    const line = (n: number) => `${JSON.stringify({ n, pad: 'x'.repeat(80) })}\n`;
    for (let n = 0; n < 300; ) {
      let batch = '';
      for (let k = 0; k < 20 && n < 300; k++) batch += line(n++);
      writer.write(Buffer.from(batch));
      await sleep(1);
    }
    await new Promise<void>((r) => writer.flush(() => r()));
    assert.ok(rotations >= 5, `${rotations} rotations`);
    const files = [...Array.from({ length: rotations }, (_, i) => `${file}.${i + 1}`), file].filter((f) => existsSync(f));
    for (const f of files) assert.ok(statSync(f).size <= 4096, `${f}: ${statSync(f).size} bytes`);
    const ns = files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { n: number }).n));
    assert.deepEqual(ns, Array.from({ length: 300 }, (_, i) => i));
  });
});

describe('ConnectionTracker', () => {
  it('counts requests in flight from Node channels: finished, aborted; draining answers with connection: close', async () => {
    const { ConnectionTracker } = await import('../src/runtime/drain.ts');
    const release: Array<() => void> = [];
    const server = http.createServer((req, res) => {
      if (req.url === '/hold') release.push(() => res.end('held'));
      else res.end('ok');
    });
    const tracker = new ConnectionTracker(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    const held = fetch(`http://127.0.0.1:${port}/hold`).then((r) => r.text());
    await sleep(50);
    assert.equal(tracker.inFlightCount, 1);
    assert.deepEqual(tracker.snapshot().map((r) => [r.method, r.url]), [['GET', '/hold']]);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.on('connect', r));
    sock.write('GET /hold HTTP/1.1\r\nhost: x\r\n\r\n');
    await sleep(50);
    assert.equal(tracker.inFlightCount, 2);
    sock.destroy();
    await sleep(50);
    assert.equal(tracker.inFlightCount, 1, 'the aborted request is no longer in flight');
    tracker.closeAfterResponse();
    release.shift()!();
    assert.equal(await held, 'held');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.headers.get('connection'), 'close');
    await res.text();
    await sleep(20);
    assert.equal(tracker.inFlightCount, 0);
  });
});

it('rpc answers: a back-reference is "[Circular]", a shared one is written twice; Map, Set, BigInt and Error are shown', () => {
  const shared = { n: 1 };
  const loop: Record<string, unknown> = { name: 'loop', shared, again: shared };
  loop.self = loop;
  loop.list = [loop, new Map([['k', loop]])];
  assert.deepEqual(JSON.parse(toJson(loop)), {
    name: 'loop',
    shared: { n: 1 },
    again: { n: 1 },
    self: '[Circular]',
    list: ['[Circular]', { k: '[Circular]' }],
  });
  assert.deepEqual(JSON.parse(toJson({ big: 10n, set: new Set([1, 2]), err: new TypeError('bad') })), { big: '10', set: [1, 2], err: { name: 'TypeError', message: 'bad' } });
  assert.equal(toJson(undefined), 'null');
});
