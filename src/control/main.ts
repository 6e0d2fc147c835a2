// releases/VSN/slipway.mjs: what `bin/APP COMMAND` runs (after the sh script sourced env.sh).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { LOG_LEVELS, REQUEST_LOG_MODES, type SupervisorStatus } from '../protocol.ts';
import { ReleaseRoot, VERSION_PATTERN } from '../release/layout.ts';
import { permanentVersion } from '../release/releases-file.ts';
import { readCookie } from '../release/cookie.ts';
import { alive } from '../release/process.ts';
import { parseDuration } from '../runtime/env.ts';
import { ControlError, request } from './client.ts';
import { SUPERVISOR_NODE_FLAGS } from './bin-script.ts';
import { bytes, duration, table } from './format.ts';
import { installCommand, releasesCommand } from './install.ts';
import { logsCommand } from './logs.ts';
import { hooksCommands } from './hooks.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const root = process.env.RELEASE_ROOT ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const rel = new ReleaseRoot(root);
const version = process.env.RELEASE_VSN ?? permanentVersion(rel) ?? '?';
const name = process.env.RELEASE_NAME ?? safeName();
const node = process.env.RELEASE_NODE ?? process.execPath;

function safeName(): string {
  try {
    return rel.manifest(version).name;
  } catch {
    return 'app';
  }
}

/** A --timeout's value, checked while the arguments are read: a typo is a usage error (exit 2), before anything is asked of the release. */
function durationArg(value: string): string {
  let ms = 0;
  try {
    ms = parseDuration(value);
  } catch {
    // Not a duration: the error below.
  }
  if (!(ms > 0)) throw new InvalidArgumentError('expected a duration above 0 like 500ms, 30s or 2m.');
  return value;
}
/** A release version (a directory under releases/), checked as the build and install check it. */
function versionArg(value: string): string {
  if (!VERSION_PATTERN.test(value)) throw new InvalidArgumentError('not a release version (letters, digits, . + _ -, at most 64).');
  return value;
}

/** One clear line on stderr and a non-zero exit. */
function die(msg: string, code = 1): never {
  process.stderr.write(`${name}: ${msg}\n`);
  process.exit(code);
}

async function call(cmd: Parameters<typeof request>[1], args: Record<string, unknown> = {}, progress = false): Promise<unknown> {
  try {
    return await request(rel, cmd, args, progress ? (m) => process.stderr.write(`  ${m}\n`) : undefined);
  } catch (err) {
    if (err instanceof ControlError) die(err.message, err.code === 'not-running' ? 3 : 1);
    die((err as Error).message);
  }
}



const program = new Command(name)
  .description(`Control script of the ${name} release (Slipway). Every command sources releases/VSN/env.sh first.`)
  .version(`${name} ${version}`, '--release-version', 'print the on-disk release version')
  .showSuggestionAfterError()
  .exitOverride();

program
  .command('start')
  .description('start the release in the foreground (supervisor + workers); logs go to stdout and log/')
  .action(async () => {
    const { runSupervisor } = await import('../supervisor/index.ts');
    await runSupervisor({ root, version, node, echo: process.env.SLIPWAY_DAEMON !== '1' });
  });

program
  .command('daemon')
  .description('start the release in the background; returns once it is ready (exit 0) or failed (exit 1, with the reason)')
  .addOption(new Option('--timeout <duration>', 'how long to wait for the first ready worker').default('60s').argParser(durationArg))
  .action(async (opts: { timeout: string }) => {
    const timeoutMs = parseDuration(opts.timeout, '--timeout');
    mkdirSync(rel.logDir, { recursive: true });
    mkdirSync(rel.tmpDir, { recursive: true, mode: 0o700 });
    const logFile = path.join(rel.logDir, 'daemon.log');
    const fd = openSync(logFile, 'a');
    const startedAt = Date.now();
    const child = spawn(node, [...SUPERVISOR_NODE_FLAGS, path.join(path.dirname(process.argv[1]!), 'supervisor.cjs')], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, SLIPWAY_DAEMON: '1' } });
    closeSync(fd);
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    child.unref();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await sleep(50);
      if (exited !== undefined) {
        let reason = '';
        if (existsSync(rel.lastExitFile) && statSync(rel.lastExitFile).mtimeMs >= startedAt - 1000) reason = readFileSync(rel.lastExitFile, 'utf8').trim();
        if (!reason) reason = lastLines(logFile, 1) || `supervisor exited with code ${exited}`;
        process.stderr.write(reason.startsWith(`${name}:`) ? reason + '\n' : `${name}: failed to start: ${reason}\n`);
        process.exit(1);
      }
      try {
        const st = (await request(rel, 'status')) as SupervisorStatus;
        if (st.pid === child.pid && st.workers.some((w) => w.state === 'ready')) {
          process.stdout.write(`${name} ${st.version} started (pid ${st.pid}), listening on ${st.listen.host}:${st.listen.port}\n`);
          process.exit(0);
        }
      } catch {
        // not up yet
      }
    }
    let failing = '';
    try {
      const st = (await request(rel, 'status')) as SupervisorStatus;
      failing = st.events.filter((e) => e.msg.includes('not ready')).map((e) => e.msg).pop() ?? '';
    } catch {
      // ignore
    }
    die(`not ready after ${opts.timeout}${failing ? `: ${failing}` : ''}; it is still running (pid ${child.pid}): see log/ or run: bin/${name} stop`);
  });

program
  .command('stop')
  .description('stop gracefully: drain every worker (stop timeout), then exit; waits until the release is gone')
  .action(async () => {
    const { pid } = (await call('stop')) as { pid: number };
    const deadline = Date.now() + 10 * 60_000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) die(`supervisor ${pid} still running`);
    process.stdout.write(`${name} stopped\n`);
  });

program
  .command('restart')
  .description('rolling restart: new workers of the current release start and become ready before the old ones drain')
  .action(async () => {
    const r = (await call('restart', {}, true)) as { ms: number; to: string };
    process.stdout.write(`${name} ${r.to} restarted in ${r.ms} ms\n`);
  });

program
  .command('pid')
  .description('print the supervisor pid (exit 3 when not running)')
  .action(async () => {
    const r = (await call('ping')) as { pid: number };
    process.stdout.write(`${r.pid}\n`);
  });

program
  .command('version')
  .description('print the release name and the version that is serving (or on disk, when not running)')
  .action(async () => {
    try {
      const r = (await request(rel, 'ping')) as { version: string };
      process.stdout.write(`${name} ${r.version}\n`);
    } catch {
      process.stdout.write(`${name} ${version}\n`);
    }
  });

program
  .command('status')
  .description('supervisor and workers: pid, version, state, uptime, restarts, memory')
  .option('--json', 'print JSON')
  .action(async (opts: { json?: boolean }) => {
    const st = (await call('status')) as SupervisorStatus;
    if (opts.json) return void process.stdout.write(JSON.stringify(st, null, 2) + '\n');
    const head = `${st.name} ${st.version} (permanent: ${st.permanent ?? '-'})  ${st.state}  supervisor pid ${st.pid}, up ${duration(st.uptimeMs)}, listening on ${st.listen.host}:${st.listen.port}${st.listen.activated ? ' (socket activation)' : ''}, restarts ${st.restarts}`;
    const rows = [['PID', 'VERSION', 'STATE', 'UPTIME', 'RESTARTS', 'RSS', 'HEAP', 'IN-FLIGHT']];
    for (const w of st.workers) rows.push([String(w.pid ?? '-'), w.version, w.state, duration(w.uptimeMs), String(w.restarts), bytes(w.rss), bytes(w.heapUsed), String(w.inFlight ?? '-')]);
    const bake = st.bake ? `\nbake: ${st.bake.version} becomes permanent in ${duration(Math.max(0, Date.parse(st.bake.until) - Date.now()))} unless it crashes or fails readiness (then back to ${st.bake.previous})\n` : '';
    process.stdout.write(`${head}\n${bake}\n${table(rows)}\n`);
    const recent = st.events.slice(-5);
    if (recent.length) process.stdout.write(`\nrecent events:\n${recent.map((e) => `  ${e.at}  ${e.msg}`).join('\n')}\n`);
  });

program
  .command('rpc')
  .description('evaluate a JavaScript expression inside a running worker (Health, Release, Repo, … in scope); prints JSON')
  .argument('<expr>', 'expression, e.g. "Health.ok()"')
  .action(async (expr: string) => {
    const r = (await call('rpc', { expr })) as { json: string | null };
    if (r.json !== null) process.stdout.write(r.json + '\n');
  });

program
  .command('eval')
  .description('evaluate an expression in a fresh process with the app loaded and configured but not started (no port bound)')
  .argument('<expr>', 'expression, e.g. "Release.migrate()"')
  .action(async (expr: string) => {
    const child = spawn(node, [...rel.manifest(version).settings.nodeFlags, rel.appEntry(version)], {
      stdio: 'inherit',
      env: { ...process.env, RELEASE_ROOT: root, RELEASE_VSN: version, SLIPWAY_MODE: 'eval', SLIPWAY_EVAL: expr },
    });
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  });

program
  .command('remote')
  .description('an interactive REPL inside a running worker (type .exit to leave)')
  .action(async () => {
    const r = (await call('remote')) as { path: string; pid: number };
    const cookie = readCookie(rel, false);
    const sock = net.connect(r.path);
    sock.on('error', (err) => die(`remote: ${err.message}`));
    sock.on('connect', () => {
      sock.write(cookie + '\n');
      if (process.stdin.isTTY) process.stderr.write(`connected to worker ${r.pid}; .exit to leave\n`);
      process.stdin.pipe(sock);
      sock.pipe(process.stdout);
    });
    sock.on('close', () => process.exit(0));
  });

for (const which of ['health', 'ready'] as const) {
  program
    .command(which)
    .description(which === 'health' ? 'GET /health on the running release: exit 0 when 200, 1 otherwise (for container health checks)' : 'GET /ready on the running release: exit 0 when 200, 1 otherwise')
    .option('--quiet', 'print nothing')
    .option('--timeout <duration>', 'request timeout', durationArg, '2s')
    .action(async (opts: { quiet?: boolean; timeout: string }) => {
      const info = rel.info();
      if (!info) die('not running (no tmp/supervisor.json)', 3);
      const settings = rel.manifest(info.version).settings;
      const host = info.host === '0.0.0.0' ? '127.0.0.1' : info.host === '::' ? '[::1]' : info.host.includes(':') ? `[${info.host}]` : info.host;
      const url = `http://${host}:${info.port}${which === 'health' ? settings.healthPath : settings.readyPath}`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(parseDuration(opts.timeout, '--timeout')) });
        const body = await res.text();
        if (!opts.quiet) process.stdout.write(body.trim() + '\n');
        process.exit(res.status === 200 ? 0 : 1);
      } catch (err) {
        die(`${which}: GET ${url} failed: ${(err as Error).message}`);
      }
    });
}

program
  .command('upgrade')
  .description('switch to an installed release with no dropped request: migration gate, new workers ready, old workers drain')
  .argument('<version>', 'an installed version (see: releases)', versionArg)
  .option('--json', 'print the result as JSON')
  .action(async (vsn: string, opts: { json?: boolean }) => {
    const r = (await call('upgrade', { version: vsn }, !opts.json)) as { from: string; to: string; ms: number };
    process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : `${name}: upgraded ${r.from} → ${r.to} in ${r.ms} ms (current; permanent after the bake period)\n`);
  });

program
  .command('rollback')
  .description('switch back to an older release on disk (default: the last permanent one), with no dropped request')
  .argument('[version]', 'version to roll back to', versionArg)
  .option('--json', 'print the result as JSON')
  .action(async (vsn: string | undefined, opts: { json?: boolean }) => {
    const r = (await call('rollback', vsn ? { version: vsn } : {}, !opts.json)) as { from: string; to: string; ms: number };
    process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : `${name}: rolled back ${r.from} → ${r.to} in ${r.ms} ms (permanent)\n`);
  });

program
  .command('log-level')
  .description('change the log level of every worker at runtime (and of workers started later, until the supervisor stops)')
  .addArgument(new Argument('<level>', LOG_LEVELS.join(' | ')).choices(LOG_LEVELS))
  .action(async (level: string) => {
    const r = (await call('log-level', { level })) as { workers: number };
    process.stdout.write(`log level ${level} on ${r.workers} worker(s)\n`);
  });

program
  .command('request-log')
  .description('change which requests get a log line, on every worker at runtime (and workers started later, until the supervisor stops): on = errors, aborted and slow ones and up to SLIPWAY_REQUEST_LOG_RATE others a second; all = every request; errors; off')
  .addArgument(new Argument('<mode>', REQUEST_LOG_MODES.join(' | ')).choices(REQUEST_LOG_MODES))
  .action(async (mode: string) => {
    const r = (await call('request-log', { mode })) as { workers: number };
    process.stdout.write(`request lines: ${mode} on ${r.workers} worker(s)\n`);
  });

installCommand(program, rel, name, die);
releasesCommand(program, rel, name, die);
logsCommand(program, rel, name, die);
hooksCommands(program, rel, name, die);

function lastLines(file: string, n: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  die((err as Error).message);
}
