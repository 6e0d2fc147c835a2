// The release under drill, driven through its own control script (bin/APP), as an operator would.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SupervisorInfo, SupervisorStatus } from '../protocol.ts';
import { assertLoopback } from './loadgen.ts';
import { alive } from '../release/process.ts';
import { ReleaseRoot } from '../release/layout.ts';

export { alive };

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export class Target {
  readonly root: string;
  readonly name: string;

  constructor(
    readonly bin: string,
    readonly env: NodeJS.ProcessEnv = {},
  ) {
    this.bin = path.resolve(bin);
    if (!existsSync(this.bin)) throw new Error(`--release: ${bin}: no such file (expected PATH/bin/APP of a deployed release)`);
    this.root = path.dirname(path.dirname(this.bin));
    this.name = path.basename(this.bin);
    if (!existsSync(path.join(this.root, 'releases'))) throw new Error(`--release: ${bin} is not the bin script of a release (no ${path.join(this.root, 'releases')})`);
  }

  run(args: string[], timeoutMs = 300_000, extraEnv: NodeJS.ProcessEnv = {}): Promise<CmdResult> {
    const t0 = Date.now();
    const env = { ...process.env, ...this.env, ...extraEnv };
    // A key set to undefined in this.env is removed from the inherited environment.
    for (const [k, v] of Object.entries(this.env)) if (v === undefined) delete env[k];
    return new Promise((resolve) => {
      execFile(this.bin, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - t0 });
      });
    });
  }

  info(): SupervisorInfo | undefined {
    return new ReleaseRoot(this.root).info();
  }

  async status(): Promise<SupervisorStatus | undefined> {
    const r = await this.run(['status', '--json'], 30_000);
    if (r.code !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as SupervisorStatus;
    } catch {
      return undefined;
    }
  }

  /** http://127.0.0.1:PORT of the running release; throws unless it listens on loopback. */
  origin(st: SupervisorStatus): string {
    const host = st.listen.host;
    const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
    assertLoopback(h);
    return `http://${h.includes(':') ? `[${h}]` : h}:${st.listen.port}`;
  }
}


export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}
