// slipway supervisor: the long-lived process of a running release.
import net from 'node:net';
import { ConfigError } from '../runtime/env.ts';
import { ReleaseRoot } from '../release/layout.ts';
import { readCookie } from '../release/cookie.ts';
import { resolveSettings } from './settings.ts';
import { Supervisor } from './supervisor.ts';
import { startControlServer } from './control-server.ts';
import { createNotifier } from './notify.ts';

export { Supervisor } from './supervisor.ts';
export { SwitchError } from './errors.ts';
export { resolveSettings, type Settings } from './settings.ts';

export interface RunOptions {
  root: string;
  version: string;
  node: string;
  echo: boolean;
}

/** Answers true if a supervisor already listens on the control socket. */
export function controlAlive(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function runSupervisor(opts: RunOptions): Promise<void> {
  const rel = new ReleaseRoot(opts.root);
  const die = (msg: string, code: number): never => {
    process.stderr.write(`${rel.root ? nameOf(rel, opts.version) : 'slipway'}: ${msg}\n`);
    process.exit(code);
  };
  let manifest;
  try {
    manifest = rel.manifest(opts.version);
  } catch (err) {
    return die(`cannot read releases/${opts.version}/release.json: ${(err as Error).message}`, 1);
  }
  let settings;
  try {
    settings = resolveSettings(manifest.settings);
  } catch (err) {
    if (err instanceof ConfigError) return die(err.message, 78);
    throw err;
  }
  if (await controlAlive(rel.controlSocket)) return die(`already running (control socket ${rel.controlSocket} answers)`, 1);
  const cookie = readCookie(rel, true);
  const notifier = createNotifier();
  const sup = new Supervisor({ rel, version: opts.version, settings, node: opts.node, echo: opts.echo, notify: notifier?.notify });
  process.on('uncaughtException', (err) => sup.fatal(`supervisor error: ${err.stack ?? err}`));
  try {
    await sup.start();
  } catch (err) {
    return die((err as Error).message, err instanceof ConfigError ? 78 : 1);
  }
  const control = await startControlServer(sup, rel.controlSocket, cookie);
  // Booted: what booting left behind is garbage; collect it now rather than whenever V8 next
  // would (~0.2 MB of resident memory; `gc` exists under SUPERVISOR_NODE_FLAGS only).
  (globalThis as { gc?: () => void }).gc?.();
  const exit = sup.onExit;
  sup.onExit = (code) => {
    control.close();
    notifier?.close();
    exit(code);
  };
  process.on('SIGTERM', () => void sup.shutdown(0, 'SIGTERM'));
  process.on('SIGINT', () => void sup.shutdown(0, 'SIGINT'));
  process.on('SIGHUP', () => sup.logLine('info', 'SIGHUP ignored (use bin/APP upgrade or systemctl reload)'));
}

function nameOf(rel: ReleaseRoot, vsn: string): string {
  try {
    return rel.manifest(vsn).name;
  } catch {
    return 'slipway';
  }
}
