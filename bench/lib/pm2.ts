// PM2, only as this benchmark starts it: its own PM2_HOME in a temp dir, so that a PM2 the
// benchmark did not start is never touched; `pm2 kill` with that home at the end.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { alive, descendants, killAll, onCleanup, sleep, tempDir, trackPid, untrackPid } from './cleanup.ts';
import { BASE_ENV } from './release.ts';
import { REPO } from './results.ts';

const PM2_BIN = path.join(REPO, 'node_modules', '.bin', 'pm2');

export interface Pm2App {
  name: string;
  script: string;
  instances: number;
  mode: 'cluster' | 'fork';
  env: Record<string, string>;
}

export class Pm2 {
  readonly home: string;
  private killNow: (() => Promise<void>) | undefined;

  constructor() {
    this.home = tempDir('slipway-bench-pm2-');
  }

  run(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      execFile(PM2_BIN, args, { env: { ...BASE_ENV, PM2_HOME: this.home }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - t0 });
      });
    });
  }

  async runOk(args: string[], timeoutMs = 60_000) {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`pm2 ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  }

  /** Start an app from an ecosystem file (starts this home's daemon if needed). */
  async start(app: Pm2App): Promise<void> {
    const eco = path.join(this.home, 'ecosystem.config.cjs');
    const conf = { apps: [{ name: app.name, script: app.script, exec_mode: app.mode, instances: app.instances, env: app.env, autorestart: true, merge_logs: true }] };
    writeFileSync(eco, `module.exports = ${JSON.stringify(conf, null, 2)};\n`);
    if (!this.killNow) {
      this.killNow = onCleanup(`pm2 kill (PM2_HOME=${this.home})`, () => this.killDaemon());
    }
    const r = await this.run(['start', eco]);
    const pid = this.daemonPid();
    if (pid) {
      trackPid(pid);
      for (const c of descendants(pid)) trackPid(c);
    }
    if (r.code !== 0) throw new Error(`pm2 start failed: ${r.stderr.trim() || r.stdout.trim()}`);
  }

  daemonPid(): number | undefined {
    try {
      return Number(readFileSync(path.join(this.home, 'pm2.pid'), 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  async list(): Promise<Array<{ pid: number; status: string }>> {
    const r = await this.runOk(['jlist']);
    return (JSON.parse(r.stdout) as Array<{ pid: number; pm2_env: { status: string } }>).map((p) => ({ pid: p.pid, status: p.pm2_env.status }));
  }

  private async killDaemon(): Promise<void> {
    const pid = this.daemonPid();
    const tree = pid ? descendants(pid) : [];
    await this.run(['kill'], 30_000);
    if (pid) {
      for (let i = 0; i < 60 && alive(pid); i++) await sleep(50);
      killAll([pid, ...tree]);
      untrackPid(pid);
    }
    for (const c of tree) untrackPid(c);
  }

  /** `pm2 kill` for this benchmark's PM2_HOME only. */
  async kill(): Promise<void> {
    const k = this.killNow;
    this.killNow = undefined;
    await k?.();
  }
}
