// The drill's load generator against small real HTTP servers on loopback: response framing
// (Content-Length, chunked, Connection: close), errors by kind, coordinated omission in open loop,
// and its two bounds.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { parseMix, startLoad } from '../src/drill/loadgen.ts';
import { lastVariantAt, summarize, variantSwitches, windows } from '../src/drill/analyze.ts';
import { Connection } from '../src/drill/http1.ts';
import { freePort, onCleanup, runCleanups } from './helpers/release.ts';

after(runCleanups);

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer({ keepAliveTimeout: 10_000 }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('framing: Content-Length, chunked and Connection: close bodies, x-release per response', async () => {
  const origin = await serve((req, res) => {
    res.setHeader('x-release', req.url === '/chunked' ? '2.0.0' : '1.0.0');
    if (req.url === '/chunked') {
      res.write('{"a":');
      setTimeout(() => res.end('1}'), 2);
    } else if (req.url === '/close') {
      res.setHeader('connection', 'close');
      res.end('bye');
    } else res.end(JSON.stringify({ ok: true, pad: 'x'.repeat(20_000) }));
  });
  const load = startLoad({ origin, mode: 'closed', connections: 3, routes: parseMix('/chunked=1,/close=1,/plain=1'), maxRequests: 300, maxDurationMs: 20_000 });
  const r = await load.done;
  const s = summarize(r);
  assert.equal(r.stoppedBy, 'max-requests');
  assert.equal(s.requests, 300);
  assert.equal(s.ok, 300, JSON.stringify(s.errors));
  assert.ok(s.releases['1.0.0']! > 0 && s.releases['2.0.0']! > 0);
});

test("a socket idle for nearly the server's keep-alive timeout is not reused (the server may be closing it)", async () => {
  // keepAliveTimeout 2 s: Node answers "Keep-Alive: timeout=2"; the client gives a socket up after 1 s idle.
  const server = http.createServer({ keepAliveTimeout: 2000 }, (_req, res) => res.end('ok'));
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const c = new Connection('127.0.0.1', (server.address() as net.AddressInfo).port, 5000);
  onCleanup(() => c.close());
  assert.equal((await c.request('GET', '/', '', undefined, true)).body, 'ok');
  assert.equal((await c.request('GET', '/', '', undefined, true)).body, 'ok');
  assert.equal(connections, 1, 'reused while fresh');
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal((await c.request('GET', '/', '', undefined, true)).body, 'ok');
  assert.equal(connections, 2, 'a new connection after 1.3 s idle (server closes at 2 s)');
});

test('errors by kind: refused, reset, timeout, non-2xx', async () => {
  const origin = await serve((req, res) => {
    if (req.url === '/reset') return void req.socket.destroy();
    if (req.url === '/hang') return; // never answers
    res.statusCode = 503;
    res.end('no');
  });
  const r = await startLoad({ origin, mode: 'closed', connections: 2, routes: parseMix('/reset=1,/hang=1,/503=1'), maxRequests: 30, maxDurationMs: 8000, timeoutMs: 300 }).done;
  const s = summarize(r);
  assert.ok(s.errors.reset! > 0, JSON.stringify(s.errors));
  assert.ok(s.errors.timeout! > 0, JSON.stringify(s.errors));
  assert.ok(s.errors['non-2xx']! > 0, JSON.stringify(s.errors));
  assert.equal(s.ok, 0);

  const closed = await freePort(); // nothing listens there
  const r2 = await startLoad({ origin: `http://127.0.0.1:${closed}`, mode: 'open', rate: 50, connections: 2, routes: parseMix('hello'), maxRequests: 1000, maxDurationMs: 600 }).done;
  const s2 = summarize(r2);
  assert.equal(r2.stoppedBy, 'max-duration');
  assert.ok(s2.requests > 10 && s2.requests <= 40, `${s2.requests} requests at 50/s for 0.6 s`);
  assert.equal(s2.errors.refused, s2.requests);
});

test('open loop counts a stall as latency for every request scheduled during it (coordinated omission)', async () => {
  let stallUntil = 0;
  const origin = await serve((_req, res) => {
    const wait = Math.max(0, stallUntil - Date.now());
    setTimeout(() => res.end('ok'), wait);
  });
  const load = startLoad({ origin, mode: 'open', rate: 100, connections: 2, routes: parseMix('/x'), maxRequests: 10_000, maxDurationMs: 3000 });
  setTimeout(() => (stallUntil = Date.now() + 600), 1000);
  const r = await load.done;
  const s = summarize(r);
  assert.ok(s.requests >= 250 && s.requests <= 310, `${s.requests} requests at 100/s for 3 s`);
  // ~60 requests were due during the 600 ms stall; a closed-loop view would show only the 2 stuck
  // on the connections. From the schedule, dozens of them waited hundreds of ms.
  let slow = 0;
  for (let i = 0; i < r.timeline.n; i++) if (r.timeline.latency[i]! > 200) slow++;
  assert.ok(slow >= 25, `${slow} requests slower than 200 ms`);
  assert.ok(s.latency.max >= 450, `max ${s.latency.max}`);
  assert.ok(s.latency.p50 < 100, `p50 ${s.latency.p50}`);
  // …and the 100 ms windows show where it happened.
  const ws = windows(r);
  const worst = ws.reduce((a, w) => ((w.max ?? 0) > (a.max ?? 0) ? w : a));
  assert.ok(worst.t >= 1000 && worst.t <= 2000, `worst window at ${worst.t} ms`);
});

test('a flag header is recorded per response (open loop), and its switch found like a release switch', async () => {
  let flip = Infinity;
  const origin = await serve((req, res) => {
    // Like the orders example: only some routes carry the header.
    if (req.url === '/orders') res.setHeader('x-pricing', Date.now() < flip ? 'new' : 'classic');
    res.end('ok');
  });
  const load = startLoad({ origin, mode: 'open', rate: 200, connections: 4, routes: parseMix('/orders=1,/hello=1'), maxRequests: 10_000, maxDurationMs: 2000, variantHeader: 'X-Pricing' });
  setTimeout(() => (flip = Date.now()), 1000);
  const r = await load.done;
  const tl = r.timeline;
  let withHeader = 0;
  for (let i = 0; i < tl.n; i++) if (tl.variant[i]! >= 0) withHeader++;
  assert.ok(withHeader > 100 && withHeader < tl.n - 100, `${withHeader} of ${tl.n} responses carry x-pricing`);
  assert.deepEqual([...tl.variants].sort(), ['classic', 'new']);
  const sw = variantSwitches(windows(r));
  assert.deepEqual(sw.map((s) => [s.from, s.to]), [[null, 'new'], ['new', 'classic']]);
  assert.ok(Math.abs(sw[1]!.at - 1000) <= 200, `switch at ${sw[1]!.at} ms`);
  const last = lastVariantAt(r, new Set(['new']), 0)!;
  assert.ok(last > 900 && last < 1200, `last "new" response at ${last} ms`);
});

test('loopback only', () => {
  assert.throws(() => startLoad({ origin: 'http://10.1.2.3:80', mode: 'closed', connections: 1, routes: parseMix('hello'), maxRequests: 1, maxDurationMs: 100 }), /loopback only/);
  assert.throws(() => startLoad({ origin: 'http://example.com', mode: 'closed', connections: 1, routes: parseMix('hello'), maxRequests: 1, maxDurationMs: 100 }), /loopback only/);
});
