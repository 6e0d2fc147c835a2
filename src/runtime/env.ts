// Runtime configuration helpers: read the environment at boot, fail with one line naming the
// variable and the problem. `_FILE` variants read secrets from files (Docker/K8s secrets).
import { readFileSync } from 'node:fs';

export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Source = Record<string, string | undefined>;

export interface UrlOptions {
  /** Allowed URL schemes without the colon, e.g. ["postgres", "postgresql", "sqlite"]. */
  schemes?: string[];
}

export interface Env {
  /** The raw value, or undefined. Reads NAME, then the file named by NAME_FILE. */
  get(name: string): string | undefined;
  /** Required string: missing or empty is an error. */
  fetch(name: string): string;
  /** String with a default. */
  string(name: string, fallback: string): string;
  int(name: string, fallback?: number, range?: { min?: number; max?: number }): number;
  bool(name: string, fallback?: boolean): boolean;
  url(name: string, fallback?: string, options?: UrlOptions): URL;
  /** Duration like "30s", "500ms", "2m" or a bare number of milliseconds. */
  duration(name: string, fallback: string | number): number;
  oneOf<T extends string>(name: string, choices: readonly T[], fallback?: T): T;
}

export function createEnv(source: Source = process.env): Env {
  const get = (name: string): string | undefined => {
    const direct = source[name];
    if (direct !== undefined && direct !== '') return direct;
    const file = source[`${name}_FILE`];
    if (file === undefined || file === '') return undefined;
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${name}_FILE`, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  };
  const required = (name: string): string => {
    const v = get(name);
    if (v === undefined) throw new ConfigError(name, `is required but not set (set ${name} or ${name}_FILE)`);
    return v;
  };
  return {
    get,
    fetch: required,
    string: (name, fallback) => get(name) ?? fallback,
    int(name, fallback, range = {}) {
      const raw = get(name);
      if (raw === undefined) {
        if (fallback === undefined) return Number(required(name));
        return fallback;
      }
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got ${JSON.stringify(raw)}`);
      const n = Number(raw.trim());
      if (range.min !== undefined && n < range.min) throw new ConfigError(name, `must be at least ${range.min}, got ${n}`);
      if (range.max !== undefined && n > range.max) throw new ConfigError(name, `must be at most ${range.max}, got ${n}`);
      return n;
    },
    bool(name, fallback) {
      const raw = get(name);
      if (raw === undefined) {
        if (fallback === undefined) required(name);
        return fallback as boolean;
      }
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(name, `expected true/false (or 1/0, yes/no, on/off), got ${JSON.stringify(raw)}`);
    },
    url(name, fallback, options = {}) {
      const raw = get(name) ?? fallback;
      if (raw === undefined) required(name);
      let url: URL;
      try {
        url = new URL(raw as string);
      } catch {
        throw new ConfigError(name, 'is not a valid URL');
      }
      const scheme = url.protocol.replace(/:$/, '');
      if (options.schemes && !options.schemes.includes(scheme)) {
        throw new ConfigError(name, `unsupported scheme "${scheme}:" (expected one of ${options.schemes.map((s) => s + ':').join(', ')})`);
      }
      return url;
    },
    duration(name, fallback) {
      const raw = get(name);
      if (raw === undefined) return typeof fallback === 'number' ? fallback : parseDuration(fallback, name);
      return parseDuration(raw, name);
    },
    oneOf(name, choices, fallback) {
      const raw = get(name);
      if (raw === undefined) {
        if (fallback === undefined) required(name);
        return fallback as (typeof choices)[number];
      }
      if (!(choices as readonly string[]).includes(raw)) {
        throw new ConfigError(name, `expected one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
      }
      return raw as (typeof choices)[number];
    },
  };
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s" → 30000. Throws ConfigError naming `what` on bad input. */
export function parseDuration(raw: string | number, what = 'duration'): number {
  if (typeof raw === 'number') return raw;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) throw new ConfigError(what, `expected a duration like 500ms, 30s or 2m, got ${JSON.stringify(raw)}`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 'ms']!);
}

/** The configuration function a release's config/runtime.ts exports. */
export type RuntimeConfig<C> = (env: Env) => C;

export function defineConfig<C>(fn: RuntimeConfig<C>): RuntimeConfig<C> {
  return fn;
}
