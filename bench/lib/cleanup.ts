// Every process and directory a benchmark creates is registered here and torn down at the end,
// whatever happened: normal end, a thrown error, Ctrl-C or SIGTERM. Cleanups run LIFO; pids that
// are still registered when the process exits anyway are SIGKILLed synchronously.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive, childPids } from '../../src/release/process.ts';

export { alive, childPids };

type Cleanup = { name: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];
const lastResortPids = new Set<number>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const pid of lastResortPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up…\n`);
      void runCleanups().finally(() => process.exit(130));
    });
  }
}

export function onCleanup(name: string, fn: () => Promise<void> | void): () => Promise<void> {
  hook();
  const c = { name, fn };
  cleanups.push(c);
  // Returns a function that runs this cleanup now (once) and unregisters it.
  return async () => {
    const i = cleanups.indexOf(c);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await c.fn();
  };
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      await c.fn();
    } catch (err) {
      process.stderr.write(`cleanup "${c.name}" failed: ${(err as Error).message}\n`);
    }
  }
}

/** Track a pid so that it is SIGKILLed at exit if nothing else stopped it. */
export function trackPid(pid: number): void {
  hook();
  lastResortPids.add(pid);
}
export function untrackPid(pid: number): void {
  lastResortPids.delete(pid);
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onCleanup(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}



/** All descendants of a pid (children, grandchildren, …). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of childPids(p)) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export function killAll(pids: number[]): void {
  for (const p of pids) {
    if (!alive(p)) continue;
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run main, then every cleanup, and exit with main's outcome. */
export async function main(fn: () => Promise<void>): Promise<void> {
  let code = 0;
  try {
    await fn();
  } catch (err) {
    process.stderr.write(`\nbenchmark failed: ${(err as Error)?.stack ?? err}\n`);
    code = 1;
  }
  await runCleanups();
  process.exit(code);
}
