// `slipway drill SCENARIO --release PATH/bin/APP`: load + event + verdicts + report.
// Exit 0 when every threshold and check holds, 99 when one fails, 2 on usage errors, 1 otherwise.
import path from 'node:path';
import { Command, Option } from 'commander';
import { parseDuration } from '../runtime/env.ts';
import { DEFAULT_MIX, parseMix } from './loadgen.ts';
import { prepareReportDir, writeReport } from './report.ts';
import { DrillError, runDrill, SCENARIOS, verdictTable, type DrillReport, type EventSpec, type Scenario } from './run.ts';
import { DEFAULT_SLOS, FLAG_SLO, METRICS, resolveSlos, SloError } from './slo.ts';
import { Target } from './target.ts';

export const EXIT_FAILED = 99;

class UsageError extends Error {}

function usage(msg: string): never {
  throw new UsageError(msg);
}

function int(v: string, what: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) usage(`${what}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

function dur(v: string, what: string): number {
  try {
    const ms = parseDuration(v, what);
    if (!(ms > 0)) usage(`${what}: must be > 0`);
    return ms;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    usage(`${what}: expected a duration like 500ms, 5s or 2m, got "${v}"`);
  }
}

export interface DrillCliOptions {
  release: string;
  to?: string;
  bad?: string;
  rollbackTo?: string;
  install: string[];
  killTarget: 'worker' | 'release';
  slo: string[];
  mode: 'open' | 'closed';
  rate: string;
  connections?: string;
  mix: string;
  steady: string;
  after: string;
  maxRequests: string;
  maxDuration: string;
  timeout: string;
  reportDir: string;
  json?: boolean;
  flag?: string;
  flagOn: string;
  flagHeader: string;
}

export function eventsFor(scenario: Scenario, o: { to?: string; bad?: string; rollbackTo?: string; killTarget?: 'worker' | 'release'; flag?: string }, initial: string): EventSpec[] {
  const need = (v: string | undefined, flag: string) => v ?? usage(`${scenario}: ${flag} VERSION is required`);
  switch (scenario) {
    case 'kill':
      return [{ kind: 'kill', killTarget: o.killTarget ?? 'worker' }];
    case 'upgrade':
      return [{ kind: 'upgrade', version: need(o.to, '--to') }];
    case 'bad-release':
      return [{ kind: 'bad-release', version: need(o.bad, '--bad') }];
    case 'rollback':
      return [{ kind: 'rollback', version: o.rollbackTo }];
    case 'flag':
      return [{ kind: 'flag', flag: o.flag ?? usage('flag: --flag NAME is required (e.g. --flag new_pricing)') }];
    case 'all':
      return [
        { kind: 'kill', killTarget: o.killTarget ?? 'worker' },
        { kind: 'upgrade', version: need(o.to, '--to') },
        { kind: 'bad-release', version: need(o.bad, '--bad') },
        { kind: 'rollback', version: o.rollbackTo ?? initial },
        // With --flag: the flag is on through all of the above (flags survive upgrades), then its kill switch.
        ...(o.flag ? [{ kind: 'flag' as const, flag: o.flag }] : []),
      ];
  }
}

export function printVerdicts(r: DrillReport, paths: { json: string; html: string } | undefined, out: (s: string) => void): void {
  out(`\nDrill ${r.scenario} on ${r.release.name} (${r.release.origin}): ${r.pass ? 'PASS' : 'FAIL'}\n`);
  out(`${r.summary.requests} requests, ${r.summary.rps.toFixed(0)} req/s, availability ${r.summary.availability.toFixed(3)}%, p95 ${r.summary.latency.p95} ms\n\n`);
  out(verdictTable(r) + '\n');
  if (paths) out(`\nreport: ${path.relative(process.cwd(), paths.html) || paths.html}\n        ${path.relative(process.cwd(), paths.json) || paths.json}\n`);
}

export function register(program: Command): void {
  program
    .command('drill')
    .description('run a drill against a running release: steady load, the event (kill, upgrade, bad-release, rollback, or flag: a feature flag\'s kill switch), recovery, steady load; SLO verdicts (exit 0 pass, 99 fail) and a JSON + HTML report')
    .argument('<scenario>', `one of: ${SCENARIOS.join(', ')}`)
    .requiredOption('--release <bin>', 'PATH/bin/APP of a running release (loopback only)')
    .option('--to <version>', 'upgrade target (upgrade, all)')
    .option('--bad <version>', 'a release whose upgrade must be refused (bad-release, all)')
    .option('--rollback-to <version>', 'rollback target (default: the last permanent release; in all: the release serving at start)')
    .option('--install <tarball>', 'install TARBALL (with its .sha256) before the load; repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(new Option('--kill-target <what>', 'kill one worker, or the whole release (SIGKILL the supervisor, then restart it as systemd would)').choices(['worker', 'release']).default('worker'))
    .option('--slo <threshold>', `threshold, repeatable, k6 style: "p95<150ms", "availability>=99.9%", "recovery<2s", "flag_off<1s" (metrics: ${Object.keys(METRICS).join(', ')}; default: ${DEFAULT_SLOS.join(' ')}, plus ${FLAG_SLO} with --flag)`, (v: string, acc: string[]) => [...acc, v], [] as string[])
    .addOption(new Option('--mode <mode>', 'open loop (fixed rate, coordinated-omission aware) or closed loop (connections)').choices(['open', 'closed']).default('open'))
    .option('--rate <n>', 'requests per second (open loop)', '200')
    .option('--connections <n>', 'keep-alive connections (default: 16 open loop, 8 closed loop)')
    .option('--mix <spec>', `routes and weights: hello, health, create (POST /orders with Idempotency-Key), get, list, or /PATH`, DEFAULT_MIX)
    .option('--steady <duration>', 'steady load before the first event', '5s')
    .option('--after <duration>', 'steady load after each event', '5s')
    .option('--max-requests <n>', 'bound: the load stops after this many requests', '200000')
    .option('--max-duration <duration>', 'bound: the load stops after this long', '5m')
    .option('--timeout <duration>', 'per-request timeout', '5s')
    .option('--flag <name>', 'feature flag (flag scenario, and all): turned on before the steady load; the event is its kill switch `bin/APP flags set NAME off`; restored to its previous state at the end')
    .option('--flag-on <value>', 'what the flag is turned on with: on, or a percentage (e.g. 25%)', 'on')
    .option('--flag-header <name>', 'response header that tells which behaviour served each response', 'x-pricing')
    .option('--report-dir <dir>', 'where to write SCENARIO-TIME.json and .html', '.drill')
    .option('--json', 'print the result as JSON on stdout; no progress on stderr')
    .action(async (scenarioArg: string, o: DrillCliOptions) => {
      let report: DrillReport;
      let paths: { json: string; html: string };
      try {
        if (!(SCENARIOS as readonly string[]).includes(scenarioArg)) usage(`unknown scenario "${scenarioArg}" (one of: ${SCENARIOS.join(', ')})`);
        const scenario = scenarioArg as Scenario;
        const flagged = o.flag !== undefined && (scenario === 'flag' || scenario === 'all');
        if (o.flag !== undefined && !/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(o.flag)) usage(`--flag: bad flag name "${o.flag}"`);
        if (flagged && !/^(on|\d{1,3}(\.\d+)?%?)$/i.test(o.flagOn)) usage(`--flag-on: expected on or a percentage (e.g. 25%), got "${o.flagOn}"`);
        if (flagged && !/^[A-Za-z0-9-]+$/.test(o.flagHeader)) usage(`--flag-header: bad header name "${o.flagHeader}"`);
        const slos = resolveSlos(o.slo, flagged ? [...DEFAULT_SLOS, FLAG_SLO] : DEFAULT_SLOS);
        let routes;
        try {
          routes = parseMix(o.mix);
        } catch (err) {
          usage((err as Error).message);
        }
        const rate = int(o.rate, '--rate');
        const connections = o.connections ? int(o.connections, '--connections') : o.mode === 'open' ? 16 : 8;
        const opts = {
          steadyMs: dur(o.steady, '--steady'),
          afterMs: dur(o.after, '--after'),
          maxRequests: int(o.maxRequests, '--max-requests'),
          maxDurationMs: dur(o.maxDuration, '--max-duration'),
          timeoutMs: dur(o.timeout, '--timeout'),
        };
        eventsFor(scenario, o, '?'); // usage errors before touching the release
        const reportDir = path.resolve(o.reportDir);
        try {
          prepareReportDir(reportDir);
        } catch (err) {
          usage((err as Error).message);
        }
        let target: Target;
        try {
          target = new Target(o.release);
        } catch (err) {
          usage((err as Error).message);
        }
        const st = await target.status();
        if (!st) throw new DrillError(`${o.release} is not running (start it with: ${o.release} daemon)`);
        const say = o.json ? undefined : (l: string) => process.stderr.write(`[drill] ${l}\n`);
        report = await runDrill({ target, scenario, events: eventsFor(scenario, o, st.version), install: o.install, mode: o.mode, connections, rate, routes, slos, progress: say, ...(flagged ? { flag: { name: o.flag!, on: o.flagOn, header: o.flagHeader } } : {}), ...opts });
        const stamp = report.startedAt.replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
        paths = await writeReport(report, reportDir, `${scenario}-${stamp}`);
      } catch (err) {
        if (err instanceof UsageError || err instanceof SloError) {
          process.stderr.write(`slipway drill: ${err.message}\n`);
          process.exit(2);
        }
        process.stderr.write(`slipway drill: ${(err as Error).message}\n`);
        process.exit(1);
      }
      if (o.json) {
        const { windows: _w, ...rest } = report;
        process.stdout.write(JSON.stringify({ ...rest, report: paths }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n');
      } else printVerdicts(report, paths, (s) => process.stdout.write(s));
      process.exit(report.pass ? 0 : EXIT_FAILED);
    });
}
