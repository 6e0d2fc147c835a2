// Cost of the production hooks (request log line + metrics) on the orders example's GET /hello:
// the same release, 1 worker, run alternately with the hooks on (default) and off
// (SLIPWAY_REQUEST_LOG=off SLIPWAY_METRICS=off), autocannon on keep-alive connections, traffic
// only to 127.0.0.1. Writes bench/hooks-results.md (machine + date).
//   node --import tsx bench/hooks.ts [--seconds 8] [--rounds 3] [--connections 16]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import { buildRelease } from '../src/build/index.ts';
import { freePort } from '../src/release/process.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`bench/hooks: --${name} must be a positive number\n`);
    process.exit(2);
  }
  return v;
};
const seconds = arg('seconds', 8);
const rounds = arg('rounds', 3);
const connections = arg('connections', 16);

const acModule = 'autocannon';
type AcResult = { requests: { average: number; total: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number };
const autocannon = ((await import(acModule)) as { default: (o: Record<string, unknown>) => Promise<AcResult> }).default;


const tmp = mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-hooks-'));
let running: string | undefined;
const cleanup = () => {
  if (running) {
    try {
      execFileSync(path.join(running, 'bin', 'orders'), ['stop'], { stdio: 'ignore', timeout: 60_000 });
    } catch {
      // already stopped
    }
  }
  rmSync(tmp, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  const build = await buildRelease({ dir: path.join(here, '..', 'examples', 'orders'), out: path.join(tmp, 'build') });
  type Mode = 'off' | 'on' | 'on-noctx';
  const results: Record<Mode, AcResult[]> = { off: [], on: [], 'on-noctx': [] };
  for (let round = 0; round < rounds; round++) {
    const order: Mode[] = round % 2 === 0 ? ['off', 'on', 'on-noctx'] : ['on-noctx', 'on', 'off'];
    for (const mode of order) {
      const root = path.join(tmp, `${mode}-${round}`);
      await tar.x({ file: build.tarball, cwd: (execFileSync('mkdir', ['-p', root]), root) });
      const port = await freePort();
      const env = {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        SLIPWAY_WORKERS: '1',
        OTEL_TRACES_EXPORTER: 'none',
        ...(mode === 'off' ? { SLIPWAY_REQUEST_LOG: 'off', SLIPWAY_METRICS: 'off' } : {}),
        ...(mode === 'on-noctx' ? { SLIPWAY_REQUEST_CONTEXT: 'off' } : {}),
      };
      execFileSync(path.join(root, 'bin', 'orders'), ['daemon'], { env, stdio: 'ignore', timeout: 60_000 });
      running = root;
      const url = `http://127.0.0.1:${port}/hello`;
      await autocannon({ url, connections, duration: 2 }); // warm-up
      const r = await autocannon({ url, connections, duration: seconds });
      results[mode].push(r);
      process.stderr.write(`round ${round + 1} hooks ${mode}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors}, non-2xx ${r.non2xx}\n`);
      execFileSync(path.join(root, 'bin', 'orders'), ['stop'], { stdio: 'ignore', timeout: 60_000 });
      running = undefined;
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const off = median(results.off.map((r) => r.requests.average));
  const on = median(results.on.map((r) => r.requests.average));
  const cost = ((off - on) / off) * 100;
  const noctx = median(results['on-noctx'].map((r) => r.requests.average));
  const costNoctx = ((off - noctx) / off) * 100;
  const row = (mode: Mode) => `| hooks ${mode} | ${results[mode].map((r) => Math.round(r.requests.average)).join(' / ')} | ${Math.round(median(results[mode].map((r) => r.requests.average)))} | ${median(results[mode].map((r) => r.latency.p50))} | ${median(results[mode].map((r) => r.latency.p99))} | ${results[mode].reduce((a, r) => a + r.errors + r.non2xx, 0)} |`;
  const md = [
    '# Production hooks: cost on GET /hello',
    '',
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}. Date: ${new Date().toISOString()}.`,
    `Setup: orders example release, 1 worker, SQLite default, supervisor capturing worker output to log/orders.log (daemon, no echo); autocannon ${connections} keep-alive connections from the same machine, 2 s warm-up then ${seconds} s per run, ${rounds} rounds alternating the order. OTel export off (OTEL_TRACES_EXPORTER=none): trace ids are still made and logged.`,
    '"on-noctx" = defaults + SLIPWAY_REQUEST_CONTEXT=off.',
    '"on" = defaults: one JSON request log line per request (req_id, trace_id, span_id, route, status, ms, release) + prom-client histogram/in-flight + default Node metrics. "off" = SLIPWAY_REQUEST_LOG=off SLIPWAY_METRICS=off.',
    '',
    '| mode | req/s per round | median req/s | p50 ms | p99 ms | errors |',
    '|---|---|---|---|---|---|',
    row('off'),
    row('on'),
    row('on-noctx'),
    '',
    `Per round, throughput relative to hooks off in the same round: on ${results.on.map((r, i) => ((r.requests.average / results.off[i]!.requests.average) * 100).toFixed(0) + ' %').join(' / ')}; on-noctx ${results['on-noctx'].map((r, i) => ((r.requests.average / results.off[i]!.requests.average) * 100).toFixed(0) + ' %').join(' / ')}.`,
    '',
    `Cost of logging + metrics + per-request async context (defaults): **${cost.toFixed(1)} %** of throughput. Without the per-request AsyncLocalStorage context (SLIPWAY_REQUEST_CONTEXT=off: request lines, trace ids in them, metrics all kept; app log lines inside a request lose the request's ids): **${costNoctx.toFixed(1)} %**. Budget: 10 %. Reproduce: \`node --import tsx bench/hooks.ts --seconds ${seconds} --rounds ${rounds} --connections ${connections}\`.`,
    `The machine is shared (2 cores: load generator, supervisor and worker compete, and other engineers' benchmarks ran at the same time: load average ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} at the end of this run), so single rounds vary by tens of percent; compare the medians, and the per-round ratios of one round's modes.`,
    '',
  ].join('\n');
  // The hand-written analysis below the marker survives a re-run.
  const file = path.join(here, 'hooks-results.md');
  const MARK = '<!-- analysis (hand-written, kept by bench/hooks.ts) -->';
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = old.includes(MARK) ? '\n' + old.slice(old.indexOf(MARK)) : '';
  writeFileSync(file, md + kept);
  process.stdout.write(md);
} finally {
  cleanup();
}
