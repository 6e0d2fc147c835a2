// var/flags.json: the flag rules on disk and how one is evaluated. No OpenFeature here, so the
// control script (`bin/APP flags`) can use it without loading the SDK.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { alive } from '../release/process.ts';

export interface FlagRule {
  state: 'on' | 'off' | 'percent';
  percent?: number;
  for?: string[];
  updatedAt?: string;
}

export interface FlagsFile {
  flags: Record<string, FlagRule>;
}

export const FLAGS_FILE = 'flags.json';

/** A bad flag name, value or key given by the user (the CLI exits 2); other errors are the file's. */
export class FlagInputError extends Error {}
export const FLAG_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export function flagsPath(varDir: string): string {
  return path.join(varDir, FLAGS_FILE);
}

export function readFlags(file: string): FlagsFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { flags: {} };
    throw err;
  }
  let parsed: FlagsFile;
  try {
    parsed = JSON.parse(text) as FlagsFile;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message}); fix it or remove it (no file: every flag answers its default)`);
  }
  if (!parsed || typeof parsed !== 'object' || typeof parsed.flags !== 'object' || parsed.flags === null) throw new Error(`${file}: expected {"flags": {...}}`);
  return parsed;
}

/** Write atomically (temp file + rename) so a worker never reads half a file; updateFlags made the directory. */
function writeFlags(file: string, data: FlagsFile): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

/** How long a change waits for another one to finish before it gives up. */
const LOCK_WAIT_MS = 5000;
/** A lock older than this is a leftover of a process that was killed mid-change. */
const LOCK_STALE_MS = 10_000;

/**
 * Read, change and write the flags file under an exclusive lock (FILE.lock, holding the pid), so
 * that two changes at once (`flags set a on & flags set b on`, a drill restoring its flag) never
 * lose one another. The workers only read, and the write itself is atomic (writeFlags).
 */
export function updateFlags<T>(file: string, change: (data: FlagsFile) => T): T {
  mkdirSync(path.dirname(file), { recursive: true });
  const lock = `${file}.lock`;
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Try again at once after breaking it; wait like any other when another waiter is at it.
    if (staleLock(lock) && breakStaleLock(lock)) continue;
    if (Date.now() > until) throw new Error(`${lock}: another change of the flags has held it for ${LOCK_WAIT_MS / 1000} s; remove the file if no flags command is running`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  try {
    const data = readFlags(file);
    const result = change(data);
    writeFlags(file, data);
    return result;
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // gone already
    }
  }
}

/**
 * Remove a stale lock, one waiter at a time (under FILE.lock.break), and only if it is still stale
 * then. Without that, two waiters that both saw the dead holder's lock could both remove "it": the
 * second one removing the new lock the first had just taken, and two changes ran at once.
 * False when another waiter holds the breaker.
 */
function breakStaleLock(lock: string): boolean {
  const breaker = `${lock}.break`;
  try {
    closeSync(openSync(breaker, 'wx', 0o644));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another waiter is at it; a breaker left by a process killed in these few lines goes by age.
    try {
      if (Date.now() - statSync(breaker).mtimeMs > LOCK_STALE_MS) unlinkSync(breaker);
    } catch {
      // just removed
    }
    return false;
  }
  try {
    if (staleLock(lock)) unlinkSync(lock);
  } catch {
    // gone already
  } finally {
    rmSync(breaker, { force: true });
  }
  return true;
}

/** The holder is gone (no such pid) or the lock is older than LOCK_STALE_MS. */
function staleLock(lock: string): boolean {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) return true;
    return Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS;
  } catch {
    return false; // just released, or half-written: look again
  }
}

/** Parse the CLI's value: on | off | N% | N (0-100). */
export function parseFlagValue(value: string): Pick<FlagRule, 'state' | 'percent'> {
  const v = value.trim().toLowerCase();
  if (v === 'on' || v === 'true') return { state: 'on' };
  if (v === 'off' || v === 'false') return { state: 'off' };
  const m = /^(\d{1,3}(?:\.\d+)?)%?$/.exec(v);
  if (m) {
    const n = Number(m[1]);
    if (n >= 0 && n <= 100) return n === 100 ? { state: 'on' } : { state: 'percent', percent: n };
  }
  throw new FlagInputError(`bad flag value "${value}": expected on, off or a percentage 0-100 (e.g. 25%)`);
}

function checkName(name: string): void {
  if (!FLAG_NAME.test(name)) throw new FlagInputError(`bad flag name "${name}": letters, digits, _ . - (start with a letter, at most 64)`);
}

/** Apply `set NAME VALUE` / `set NAME --for KEY` to a flags file; returns the new rule. */
export function setFlag(file: string, name: string, change: { value?: string; forKey?: string }): FlagRule {
  checkName(name);
  const v = change.value !== undefined ? parseFlagValue(change.value) : undefined;
  if (change.forKey !== undefined && (!change.forKey || change.forKey.length > 200)) throw new FlagInputError('--for: the key must be 1 to 200 characters');
  return updateFlags(file, (data) => {
    const prev = data.flags[name];
    let rule: FlagRule = { state: prev?.state ?? 'off', ...(prev?.percent !== undefined ? { percent: prev.percent } : {}), ...(prev?.for ? { for: [...prev.for] } : {}) };
    if (v) rule = { state: v.state, ...(v.percent !== undefined ? { percent: v.percent } : {}), ...(rule.for && v.state !== 'off' ? { for: rule.for } : {}) };
    if (change.forKey !== undefined) {
      rule.for = [...new Set([...(rule.for ?? []), change.forKey])];
      if (rule.state === 'off') {
        rule.state = 'percent';
        rule.percent = 0;
      }
    }
    rule.updatedAt = new Date().toISOString();
    data.flags[name] = rule;
    return rule;
  });
}

/** Remove a flag's rule (it answers the code's default again); false when it had none. */
export function unsetFlag(file: string, name: string): boolean {
  checkName(name);
  return updateFlags(file, (data) => {
    if (!Object.hasOwn(data.flags, name)) return false;
    delete data.flags[name];
    return true;
  });
}

/** FNV-1a of "name:key" into 0..99.99. */
export function bucket(name: string, key: string): number {
  let h = 0x811c9dc5;
  const s = name + ':' + key;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return ((h >>> 0) % 10000) / 100;
}

export function evaluateRule(name: string, rule: FlagRule | undefined, key: string | undefined): { value: boolean; reason: string } | undefined {
  if (!rule) return undefined;
  if (rule.state === 'off') return { value: false, reason: 'DISABLED' };
  if (rule.state === 'on') return { value: true, reason: 'STATIC' };
  if (key !== undefined && rule.for?.includes(key)) return { value: true, reason: 'TARGETING_MATCH' };
  if (key === undefined) return { value: false, reason: 'SPLIT' };
  return { value: bucket(name, key) < (rule.percent ?? 0), reason: 'SPLIT' };
}
