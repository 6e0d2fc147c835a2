// Feature flags: an OpenFeature provider backed by var/flags.json (data that outlives releases, so
// flags survive restarts and upgrades). `bin/APP flags set NAME on|off|PERCENT|--for KEY` rewrites
// the file atomically; every worker notices within its poll interval (250 ms) and switches.
//
// Rule per flag: state "off" is a kill switch (off for everyone, even listed keys); "on" is on for
// everyone; "percent" is on for the listed keys and for PERCENT % of targeting keys (a stable
// hash of flag name + key, so a key stays in or out as the percentage grows).
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OpenFeature, OpenFeatureEventEmitter, ProviderEvents, type Client, type EvaluationContext, type JsonValue, type Provider, type ResolutionDetails } from '@openfeature/server-sdk';

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
  const parsed = JSON.parse(text) as FlagsFile;
  if (!parsed || typeof parsed !== 'object' || typeof parsed.flags !== 'object' || parsed.flags === null) throw new Error(`${file}: expected {"flags": {...}}`);
  return parsed;
}

/** Write atomically (temp file + rename) so a worker never reads half a file. */
export function writeFlags(file: string, data: FlagsFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
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
  throw new Error(`bad flag value "${value}": expected on, off or a percentage 0-100 (e.g. 25%)`);
}

/** Apply `set NAME VALUE` / `set NAME --for KEY` to a flags file; returns the new rule. */
export function setFlag(file: string, name: string, change: { value?: string; forKey?: string }): FlagRule {
  if (!FLAG_NAME.test(name)) throw new Error(`bad flag name "${name}": letters, digits, _ . - (start with a letter, at most 64)`);
  const data = readFlags(file);
  const prev = data.flags[name];
  let rule: FlagRule = { state: prev?.state ?? 'off', ...(prev?.percent !== undefined ? { percent: prev.percent } : {}), ...(prev?.for ? { for: [...prev.for] } : {}) };
  if (change.value !== undefined) {
    const v = parseFlagValue(change.value);
    rule = { state: v.state, ...(v.percent !== undefined ? { percent: v.percent } : {}), ...(rule.for && v.state !== 'off' ? { for: rule.for } : {}) };
  }
  if (change.forKey !== undefined) {
    if (!change.forKey || change.forKey.length > 200) throw new Error('--for: the key must be 1 to 200 characters');
    const keys = new Set(rule.for ?? []);
    keys.add(change.forKey);
    rule.for = [...keys];
    if (rule.state === 'off') {
      rule.state = 'percent';
      rule.percent = 0;
    }
  }
  rule.updatedAt = new Date().toISOString();
  data.flags[name] = rule;
  writeFlags(file, data);
  return rule;
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

/** The in-memory view of var/flags.json, re-read when the file changes (stat poll). */
export class FlagStore {
  private data: FlagsFile = { flags: {} };
  private sig = '';
  private timer: NodeJS.Timeout | undefined;
  private listeners: Array<(names: string[]) => void> = [];
  lastError: string | undefined;

  constructor(readonly file: string) {
    this.reload();
  }

  /** Re-read the file if it changed; returns true when the flags changed. */
  reload(): boolean {
    let sig: string;
    try {
      const st = statSync(this.file);
      sig = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      sig = 'none';
    }
    if (sig === this.sig) return false;
    try {
      const next = readFlags(this.file);
      const changed = Object.keys({ ...this.data.flags, ...next.flags }).filter((k) => JSON.stringify(this.data.flags[k]) !== JSON.stringify(next.flags[k]));
      this.data = next;
      this.sig = sig;
      this.lastError = undefined;
      if (changed.length) for (const fn of this.listeners) fn(changed);
      return changed.length > 0;
    } catch (err) {
      // Keep serving the last good flags; a half-edited file by hand must not flip anything.
      this.lastError = (err as Error).message;
      return false;
    }
  }

  watch(intervalMs = 250): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.reload(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  onChange(fn: (names: string[]) => void): void {
    this.listeners.push(fn);
  }

  rule(name: string): FlagRule | undefined {
    return this.data.flags[name];
  }

  list(): Record<string, FlagRule> {
    return { ...this.data.flags };
  }

  /** Synchronous check for hot paths: `flags.enabled('new_pricing', customerId)`. */
  enabled(name: string, key?: string, fallback = false): boolean {
    return evaluateRule(name, this.data.flags[name], key)?.value ?? fallback;
  }
}

/** OpenFeature provider over a FlagStore: boolean flags; other types answer their default. */
export class FileFlagProvider implements Provider {
  readonly metadata = { name: 'slipway-flags-file' } as const;
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();

  constructor(readonly store: FlagStore) {
    store.onChange((flagsChanged) => this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged }));
  }

  async resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    const r = evaluateRule(flagKey, this.store.rule(flagKey), context.targetingKey);
    if (!r) return { value: defaultValue, reason: 'DEFAULT' };
    return { value: r.value, reason: r.reason, variant: r.value ? 'on' : 'off' };
  }
  async resolveStringEvaluation(_k: string, defaultValue: string): Promise<ResolutionDetails<string>> {
    return { value: defaultValue, reason: 'DEFAULT' };
  }
  async resolveNumberEvaluation(_k: string, defaultValue: number): Promise<ResolutionDetails<number>> {
    return { value: defaultValue, reason: 'DEFAULT' };
  }
  async resolveObjectEvaluation<T extends JsonValue>(_k: string, defaultValue: T): Promise<ResolutionDetails<T>> {
    return { value: defaultValue, reason: 'DEFAULT' };
  }
}

let active: FlagStore | undefined;

/** Called by the worker at boot: load var/flags.json, watch it, register the OpenFeature provider. */
export function initFlags(varDir: string, pollMs = 250): FlagStore {
  active?.stop();
  const store = new FlagStore(flagsPath(varDir));
  store.watch(pollMs);
  active = store;
  OpenFeature.setProvider(new FileFlagProvider(store));
  return store;
}

/** What apps use: `flags.enabled(name, key)` (sync) or `flags.client()` (OpenFeature). */
export const flags = {
  enabled(name: string, key?: string, fallback = false): boolean {
    return active ? active.enabled(name, key, fallback) : fallback;
  },
  list(): Record<string, FlagRule> {
    return active?.list() ?? {};
  },
  client(domain?: string): Client {
    return domain ? OpenFeature.getClient(domain) : OpenFeature.getClient();
  },
  get store(): FlagStore | undefined {
    return active;
  },
};
