// One measured run, in its own process, by one tool: `slipway` (src/drill/loadgen.ts) or
// `autocannon` (9, with each response time fed into its own HDR histogram, since autocannon's
// summary has no p95). Prints one JSON line: { tool, mode, requests, errors, rps, p50, p95, p99,
// cpuUsPerReq } — the last is the client's own CPU time per request (user + system), a measure of
// overhead that the noise of a shared machine does not move much.
// Usage: node --import tsx bench/loadgen-run.ts TOOL URL CONNECTIONS SECONDS [RATE]
import * as hdr from 'hdr-histogram-js';
import { parseMix, startLoad, summarize } from '../src/drill/index.ts';

const [tool, url, conns, secs, rateArg] = process.argv.slice(2);
if (!tool || !url || !conns || !secs) {
  process.stderr.write('usage: loadgen-run.ts slipway|autocannon URL CONNECTIONS SECONDS [RATE]\n');
  process.exit(2);
}
const connections = Number(conns);
const durationMs = Number(secs) * 1000;
const rate = rateArg ? Number(rateArg) : undefined;
const u = new URL(url);

// autocannon ships no types; the little we use:
interface AcResult { requests: { total: number }; errors: number; non2xx: number; timeouts: number }
type AcInstance = PromiseLike<AcResult> & { on(ev: 'response', fn: (c: unknown, status: number, bytes: number, ms: number) => void): void };
const acModule = 'autocannon';
const autocannon = ((await import(acModule)) as { default: (o: Record<string, unknown>) => AcInstance }).default;
const cpu0 = process.cpuUsage(); // after loading both tools: only the run is measured

if (tool === 'slipway') {
  const load = startLoad({
    origin: u.origin,
    mode: rate ? 'open' : 'closed',
    rate,
    connections,
    routes: parseMix(u.pathname === '/hello' ? 'hello' : u.pathname),
    maxRequests: 50_000_000,
    maxDurationMs: durationMs,
  });
  const r = await load.done;
  const s = summarize(r);
  out({ requests: s.requests, errors: s.requests - s.ok, rps: s.rps, p50: s.latency.p50, p95: s.latency.p95, p99: s.latency.p99 });
} else if (tool === 'autocannon') {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  const inst = autocannon({ url, connections, duration: durationMs / 1000, ...(rate ? { overallRate: rate } : {}) });
  inst.on('response', (_c: unknown, _status: number, _bytes: number, responseTime: number) => h.recordValue(Math.max(1, Math.round(responseTime * 1000))));
  const res = await inst;
  const requests = res.requests.total;
  out({ requests, errors: res.errors + res.non2xx + res.timeouts, rps: requests / (durationMs / 1000), p50: h.getValueAtPercentile(50) / 1000, p95: h.getValueAtPercentile(95) / 1000, p99: h.getValueAtPercentile(99) / 1000 });
} else {
  process.stderr.write(`unknown tool ${tool}\n`);
  process.exit(2);
}

function out(o: Record<string, number>) {
  const c = process.cpuUsage(cpu0);
  const cpuUsPerReq = o.requests ? (c.user + c.system) / o.requests : 0;
  process.stdout.write(JSON.stringify({ tool, mode: rate ? `open ${rate}/s` : 'closed', ...o, cpuUsPerReq }) + '\n');
}
