// probe: build once, run modes, measure CPU ticks of supervisor, worker, self (autocannon)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { buildRelease } from '/work/main/src/build/index.ts';
const autocannon = ((await import('autocannon')) as any).default;
const modes = (process.env.MODES ?? 'off,on').split(',');
const rounds = Number(process.env.ROUNDS ?? 2);
const secs = Number(process.env.SECS ?? 5);
const freePort = () => new Promise<number>((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as any).port; s.close(() => res(p)); }); });
const ticks = (pid: number) => { try { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return process.env.SPLIT === "u" ? Number(f[11]) : process.env.SPLIT === "s" ? Number(f[12]) : Number(f[11]) + Number(f[12]); } catch { return NaN; } };
const children = (ppid: number) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => { try { return readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(ppid); } catch { return false; } }).map(Number);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'hp-'));
const build = await buildRelease({ dir: '/work/main/examples/orders', out: path.join(tmp, 'build') });
for (let r = 0; r < rounds; r++) for (const mode of (r % 2 ? [...modes].reverse() : modes)) {
  const root = path.join(tmp, `${mode}-${r}`); execFileSync('mkdir', ['-p', root]);
  await tar.x({ file: build.tarball, cwd: root });
  const port = await freePort();
  const env: any = { ...process.env, ...(process.env.PROF ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.PROF}/${mode}-${r}` } : {}), HOST: '127.0.0.1', PORT: String(port), SLIPWAY_WORKERS: '1', OTEL_TRACES_EXPORTER: 'none' };
  if (mode === 'off') Object.assign(env, { SLIPWAY_REQUEST_LOG: 'off', SLIPWAY_METRICS: 'off' });
  if (mode === 'nolog') Object.assign(env, { SLIPWAY_REQUEST_LOG: 'off' });
  if (mode === 'nometrics') Object.assign(env, { SLIPWAY_METRICS: 'off' });
  execFileSync(path.join(root, 'bin', 'orders'), ['daemon'], { env, stdio: 'ignore' });
  const sup = Number(readFileSync(path.join(root, 'tmp', readdirSync(path.join(root, 'tmp')).find((f) => f.endsWith('.pid'))!), 'utf8').trim());
  const url = `http://127.0.0.1:${port}/hello`;
  await autocannon({ url, connections: 16, duration: 2 });
  const w = children(sup).flatMap((c) => [c, ...children(c)]);
  const t0 = { s: ticks(sup), w: w.map(ticks), me: process.cpuUsage() };
  const res = await autocannon({ url, connections: 16, duration: secs, ...(process.env.RATE ? { overallRate: Number(process.env.RATE) } : {}) });
  const me = process.cpuUsage(t0.me);
  const sT = ticks(sup) - t0.s; const wT = w.map((p, i) => ticks(p) - t0.w[i]!).filter((x) => x > 0);
  const n = res.requests.total;
  console.log(`${mode} r${r}: ${Math.round(res.requests.average)} req/s; cpu s: sup ${(sT / 100).toFixed(2)} worker ${wT.map((x) => (x / 100).toFixed(2))} ac ${((me.user + me.system) / 1e6).toFixed(2)}; us/req: sup ${(sT * 1e4 / n).toFixed(1)} worker ${(wT.reduce((a, b) => a + b, 0) * 1e4 / n).toFixed(1)} ac ${((me.user + me.system) / n).toFixed(1)}; log ${(() => { try { return execFileSync('du', ['-sb', path.join(root, 'log')]).toString().split('\t')[0]; } catch { return '?'; } })()}`);
  execFileSync(path.join(root, 'bin', 'orders'), ['stop'], { stdio: 'ignore' });
}
rmSync(tmp, { recursive: true, force: true });
