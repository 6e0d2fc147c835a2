// `slipway demo` (`npm run demo`): the whole story on this machine in a few minutes. Builds the
// example release 1.0.0, 1.1.0 and a deliberately broken 1.2.0 (readiness never passes), deploys
// 1.0.0 from its tarball into a temp dir (SQLite), then one drill under load: kill a worker,
// upgrade to 1.1.0, the refused upgrade to 1.2.0, rollback to 1.0.0, all with the new_pricing
// feature flag on, and last its kill switch (flags set new_pricing off). Prints the verdicts and the
// report's path, stops everything it started, exits 0 when every SLO holds (99 otherwise).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import * as tar from 'tar';
import { buildRelease } from '../build/index.ts';
import { printVerdicts, EXIT_FAILED } from '../drill/cli.ts';
import { DEFAULT_MIX, parseMix } from '../drill/loadgen.ts';
import { prepareReportDir, writeReport } from '../drill/report.ts';
import { runDrill } from '../drill/run.ts';
import { DEFAULT_SLOS, FLAG_SLO, resolveSlos } from '../drill/slo.ts';
import { Target } from '../drill/target.ts';
import { alive, childPids, freePort } from '../release/process.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');



export interface DemoOptions {
  app: string;
  reportDir: string;
  keep?: boolean;
  json?: boolean;
  rate: number;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const t0 = Date.now();
  const say = (m: string) => process.stderr.write(`[demo] ${m}\n`);
  const work = mkdtempSync(path.join(os.tmpdir(), 'slipway-demo-'));
  const seen = new Set<number>();
  let target: Target | undefined;
  const cleanup = async () => {
    if (target) {
      const info = target.info();
      if (info && alive(info.pid)) {
        for (const p of [info.pid, ...childPids(info.pid)]) seen.add(p);
        await target.run(['stop'], 60_000);
      }
    }
    // Anything we started that is still there (by pid, and only if it runs from our work dir).
    for (const pid of seen) {
      if (!alive(pid)) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes(work)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  };
  const onSignal = () => {
    say('interrupted: stopping the release');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const out = path.join(work, 'build');
    const broken = path.join(work, 'overlay-broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'env.sh'), '#!/bin/sh\n# 1.2.0 is broken on purpose: its readiness check never passes, so its upgrade must be refused.\nexport ORDERS_FAULT_NEVER_READY=1\n', { mode: 0o755 });
    const builds = [];
    for (const [version, overlay] of [['1.0.0'], ['1.1.0'], ['1.2.0', broken]] as Array<[string, string?]>) {
      say(`building ${path.basename(o.app)} ${version}${overlay ? ' (broken on purpose: readiness never passes)' : ''}`);
      builds.push(await buildRelease({ dir: o.app, out, version, overlay }));
    }
    const deployDir = path.join(work, 'deploy');
    mkdirSync(deployDir);
    await tar.x({ file: builds[0]!.tarball, cwd: deployDir });
    const port = await freePort();
    target = new Target(path.join(deployDir, 'bin', builds[0]!.name), {
      HOST: '127.0.0.1',
      PORT: String(port),
      SLIPWAY_WORKERS: '2',
      SLIPWAY_READY_TIMEOUT: '5s',
      SLIPWAY_BAKE_PERIOD: '1h',
      DATABASE_URL: undefined, // the embedded SQLite default
    });
    say(`deployed ${builds[0]!.name}-1.0.0.tar.gz to ${deployDir}; starting it on 127.0.0.1:${port} (2 workers, SQLite)`);
    const d = await target.run(['daemon']);
    const info = target.info();
    if (info) seen.add(info.pid);
    if (d.code !== 0) throw new Error(`daemon failed: ${(d.stderr || d.stdout).trim()}`);
    for (const p of childPids(info!.pid)) seen.add(p);

    const report = await runDrill({
      target,
      scenario: 'demo: kill, upgrade 1.1.0, refused 1.2.0, rollback 1.0.0, kill switch new_pricing',
      events: [{ kind: 'kill', killTarget: 'worker' }, { kind: 'upgrade', version: '1.1.0' }, { kind: 'bad-release', version: '1.2.0' }, { kind: 'rollback', version: '1.0.0' }, { kind: 'flag', flag: 'new_pricing' }],
      flag: { name: 'new_pricing', on: 'on', header: 'x-pricing' },
      install: [builds[1]!.tarball, builds[2]!.tarball],
      mode: 'open',
      rate: o.rate,
      connections: 16,
      routes: parseMix(DEFAULT_MIX),
      steadyMs: 5000,
      afterMs: 5000,
      maxRequests: 200_000,
      maxDurationMs: 4 * 60_000,
      timeoutMs: 5000,
      slos: resolveSlos([], [...DEFAULT_SLOS, FLAG_SLO]),
      progress: o.json ? undefined : (l) => process.stderr.write(`[drill] ${l}\n`),
    });
    const paths = await writeReport(report, o.reportDir, 'demo-report');
    say(`stopping the release`);
    await cleanup();
    target = undefined;
    if (o.json) {
      const { windows: _w, ...rest } = report;
      process.stdout.write(JSON.stringify({ ...rest, report: paths, wallMs: Date.now() - t0 }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n');
    } else {
      printVerdicts(report, paths, (s) => process.stdout.write(s));
      process.stdout.write(`\ndemo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s; everything it started is stopped.\n`);
    }
    return report.pass ? 0 : EXIT_FAILED;
  } catch (err) {
    process.stderr.write(`slipway demo: ${(err as Error).message}\n`);
    await cleanup();
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('build orders 1.0.0, 1.1.0 and a broken 1.2.0, boot 1.0.0 (SQLite), and drill it: kill a worker, upgrade, refused upgrade, rollback, the kill switch of a feature flag; prints SLO verdicts and the HTML report path')
    .option('--report-dir <dir>', 'where to write demo-report.html and .json', '_build/demo')
    .option('--rate <n>', 'requests per second of the drill load', '200')
    .option('--keep', 'keep the temp build and deploy directories')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: { reportDir: string; keep?: boolean; json?: boolean; rate: string }) => {
      const rate = Number(opts.rate);
      if (!Number.isInteger(rate) || rate < 1) {
        process.stderr.write(`slipway demo: --rate: expected an integer >= 1, got "${opts.rate}"\n`);
        process.exit(2);
      }
      const reportDir = path.resolve(opts.reportDir);
      try {
        prepareReportDir(reportDir);
      } catch (err) {
        process.stderr.write(`slipway demo: ${(err as Error).message}\n`);
        process.exit(2);
      }
      const code = await runDemo({ app: path.join(REPO, 'examples', 'orders'), reportDir, keep: opts.keep, json: opts.json, rate });
      process.exit(code);
    });
}
