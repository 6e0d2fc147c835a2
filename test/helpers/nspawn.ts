// A real systemd for tests, booted safely (DEPENDENCIES.md): in a private mount namespace,
// systemd-nspawn --volatile=yes over / (tmpfs root, the host's /usr read-only), private network,
// never on the host root. Commands and traffic reach it through nsenter; it is powered off and
// its nspawn pid waited for at cleanup, even when a test fails.
//
// Run as a script (`node --import tsx test/helpers/nspawn.ts load ORIGIN MS CONNS [fresh]`) it is
// the load generator that runs inside the container's network namespace (nsenter -n).
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { alive, childPids, onCleanup, REPO, sleep, waitFor, type RunResult } from './release.ts';
import { startLoad, type LoadResult } from './load.ts';

export function nspawnAvailable(): string | false {
  for (const bin of ['/usr/bin/systemd-nspawn', '/usr/bin/unshare', '/usr/bin/nsenter']) if (!existsSync(bin)) return `${bin} is missing (apt-get install -y systemd-container; .ci/run does it)`;
  if (process.getuid?.() !== 0) return 'needs root';
  return false;
}

export interface Container {
  name: string;
  /** host pid of the container's systemd (PID 1 inside). */
  pid: number;
  nspawnPid: number;
  exec(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  /** Run the bounded load generator inside the container's network namespace. */
  load(origin: string, durationMs: number, connections: number, fresh?: boolean): Promise<LoadResult>;
  poweroff(): Promise<void>;
}

function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function bootContainer(opts: { bind: Array<[string, string]>; bindRo: Array<[string, string]>; logFile: string }): Promise<Container> {
  const name = `slipway-sd-${randomBytes(3).toString('hex')}`;
  mkdirSync('/run/systemd/nspawn', { recursive: true });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const binds = [...opts.bind.map(([h, c]) => `--bind=${q(`${h}:${c}`)}`), ...opts.bindRo.map(([h, c]) => `--bind-ro=${q(`${h}:${c}`)}`)].join(' ');
  const script =
    'mount --make-rprivate /; mount -t tmpfs tmpfs /run/systemd/nspawn; ' +
    `exec systemd-nspawn --register=no --keep-unit --volatile=yes -D / -M ${name} -b --private-network --console=pipe ${binds}`;
  const fd = openSync(opts.logFile, 'a');
  const child = spawn('unshare', ['-m', 'sh', '-c', script], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const nspawnPid = child.pid!;
  let exited = false;
  const exitedP = new Promise<void>((r) => child.on('exit', () => ((exited = true), r())));
  const poweroff = async () => {
    if (exited) return;
    if (pid) await run('nsenter', ['-t', String(pid), '-a', 'systemctl', 'poweroff'], 10_000);
    await Promise.race([exitedP, sleep(30_000)]);
    if (!exited && alive(nspawnPid)) {
      process.kill(nspawnPid, 'SIGKILL');
      await Promise.race([exitedP, sleep(5000)]);
    }
  };
  let pid = 0;
  onCleanup(poweroff);
  pid = await waitFor(
    'the container systemd',
    () => {
      if (exited) throw new Error(`systemd-nspawn exited: ${readFileSync(opts.logFile, 'utf8').slice(-2000)}`);
      const kids = childPids(nspawnPid);
      return kids.find((k) => readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'systemd');
    },
    20_000,
    100,
  );
  const exec = (args: string[], o: { timeoutMs?: number } = {}) => run('nsenter', ['-t', String(pid), '-a', ...args], o.timeoutMs);
  // The bus comes up a moment after PID 1: retry until systemctl can ask, then wait for the boot.
  await waitFor(
    'the container to boot',
    async () => {
      const state = await exec(['systemctl', 'is-system-running', '--wait'], { timeoutMs: 60_000 });
      return /running|degraded/.test(state.stdout);
    },
    90_000,
    250,
  );
  const self = fileURLToPath(import.meta.url);
  return {
    name,
    pid,
    nspawnPid,
    exec,
    async load(origin, durationMs, connections, fresh = false) {
      const r = await run('nsenter', ['-t', String(pid), '-n', '--', process.execPath, '--import', 'tsx', self, 'load', origin, String(durationMs), String(connections), fresh ? 'fresh' : ''], durationMs + 60_000);
      if (r.code !== 0) throw new Error(`load failed: ${r.stderr}`);
      return JSON.parse(r.stdout) as LoadResult;
    },
    poweroff,
  };
}

// Script mode: the load generator inside a network namespace.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv[2] === 'load') {
  const [origin, ms, conns, fresh] = process.argv.slice(3);
  process.chdir(REPO);
  const l = startLoad({ origin: origin!, durationMs: Number(ms), connections: Number(conns), fresh: fresh === 'fresh', timeoutMs: 15_000, path: '/hello' });
  const res = await l.done;
  process.stdout.write(JSON.stringify({ ...res, samples: [] }) + '\n');
}
