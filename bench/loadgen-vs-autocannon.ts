// Slipway's drill load generator against autocannon 9, side by side in one run, on loopback,
// against the orders example's GET /hello (one worker: the server, not the client, should be the
// limit). Rounds alternate the tools (A B A B …) because this machine is shared and noisy; each
// run is its own process. Two experiments, both closed loop with the same keep-alive connections:
//   hello:  GET /hello as fast as possible — overhead: who drives more req/s on the same server?
//   steady: GET /slow with SLOW_MS=20 — neither client nor server CPU is the limit, so both tools
//           should measure the same thing: agreement on throughput (5%) and p95 (10%).
// Usage: node --import tsx bench/loadgen-vs-autocannon.ts [--rounds 3] [--seconds 8] [--connections 10]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tar from 'tar';
import { buildRelease } from '../src/build/index.ts';
import { Target } from '../src/drill/target.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, connections: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);

interface Run { tool: string; mode: string; requests: number; errors: number; rps: number; p50: number; p95: number; p99: number; cpuUsPerReq: number }

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function run(tool: string, url: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', path.join(here, 'loadgen-run.ts'), tool, url, String(connections), String(seconds)];
    execFile(process.execPath, args, { cwd: repo, timeout: (seconds + 60) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${tool}: ${stderr || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Run);
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const work = mkdtempSync(path.join(os.tmpdir(), 'slipway-bench-'));
let target: Target | undefined;
try {
  const b = await buildRelease({ dir: path.join(repo, 'examples', 'orders'), out: path.join(work, 'build'), version: '1.0.0' });
  await tar.x({ file: b.tarball, cwd: work });
  const port = await freePort();
  target = new Target(path.join(work, 'bin', b.name), { HOST: '127.0.0.1', PORT: String(port), SLIPWAY_WORKERS: '1', SLOW_MS: '20', DATABASE_URL: undefined });
  const d = await target.run(['daemon']);
  if (d.code !== 0) throw new Error(d.stderr);
  const hello = `http://127.0.0.1:${port}/hello`;
  const slow = `http://127.0.0.1:${port}/slow`;
  // Warm up the server (JIT) before measuring.
  await run('autocannon', hello);
  const results: Array<Run & { exp: string }> = [];
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? ['slipway', 'autocannon'] : ['autocannon', 'slipway'];
    for (const t of order) results.push({ ...(await run(t, hello)), exp: 'hello (max)' });
    for (const t of order) results.push({ ...(await run(t, slow)), exp: 'steady (/slow 20 ms)' });
    process.stderr.write(`round ${i + 1}/${rounds} done\n`);
  }
  const lines = [`# loadgen vs autocannon — ${new Date().toISOString()}`, '', `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`, `target: orders, 1 worker, loopback, closed loop; ${connections} keep-alive connections, ${seconds} s per run, ${rounds} rounds alternating`, ''];
  lines.push('| experiment | tool | req/s (median) | p50 ms | p95 ms | p99 ms | client CPU µs/req | errors | runs (req/s) |', '|---|---|---|---|---|---|---|---|---|');
  const summary: Record<string, Record<string, { rps: number; p95: number }>> = {};
  for (const mode of ['hello (max)', 'steady (/slow 20 ms)']) {
    for (const tool of ['slipway', 'autocannon']) {
      const rs = results.filter((r) => r.tool === tool && r.exp === mode);
      const m = { rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p95: median(rs.map((r) => r.p95)), p99: median(rs.map((r) => r.p99)), cpu: median(rs.map((r) => r.cpuUsPerReq)) };
      (summary[mode] ??= {})[tool] = { rps: m.rps, p95: m.p95 };
      lines.push(`| ${mode} | ${tool} | ${m.rps.toFixed(0)} | ${m.p50.toFixed(2)} | ${m.p95.toFixed(2)} | ${m.p99.toFixed(2)} | ${m.cpu.toFixed(1)} | ${rs.reduce((a, r) => a + r.errors, 0)} | ${rs.map((r) => r.rps.toFixed(0)).join(', ')} |`);
    }
  }
  lines.push('', 'Ratios slipway / autocannon, per round (the two runs of a round are back to back, so they share the noise):', '');
  lines.push('| experiment | throughput ratios | median | p95 ratios | median |', '|---|---|---|---|---|');
  for (const mode of Object.keys(summary)) {
    const rr: number[] = [];
    const pr: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const [a, b] = ['slipway', 'autocannon'].map((t) => results.filter((r) => r.tool === t && r.exp === mode)[i]!);
      rr.push(a!.rps / b!.rps);
      pr.push(a!.p95 / b!.p95);
    }
    lines.push(`| ${mode} | ${rr.map((x) => x.toFixed(3)).join(', ')} | **${median(rr).toFixed(3)}** | ${pr.map((x) => x.toFixed(3)).join(', ')} | **${median(pr).toFixed(3)}** |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  if (target) await target.run(['stop'], 60_000);
  rmSync(work, { recursive: true, force: true });
}
