// Feature flags: an OpenFeature provider backed by var/flags.json (data that outlives releases, so
// flags survive restarts and upgrades). `bin/APP flags set NAME on|off|PERCENT|--for KEY` rewrites
// the file atomically; every worker notices within its poll interval (250 ms) and switches.
//
// Rule per flag: state "off" is a kill switch (off for everyone, even listed keys); "on" is on for
// everyone; "percent" is on for the listed keys and for PERCENT % of targeting keys (a stable
// hash of flag name + key, so a key stays in or out as the percentage grows).
import { statSync } from 'node:fs';
import { OpenFeature, OpenFeatureEventEmitter, ProviderEvents, type Client, type EvaluationContext, type JsonValue, type Provider, type ResolutionDetails } from '@openfeature/server-sdk';

export { FLAGS_FILE, FLAG_NAME, FlagInputError, flagsPath, readFlags, updateFlags, parseFlagValue, setFlag, unsetFlag, bucket, evaluateRule, type FlagRule, type FlagsFile } from './flags-file.ts';
import { flagsPath, readFlags, evaluateRule, type FlagRule, type FlagsFile } from './flags-file.ts';

export class FlagStore {
  private data: FlagsFile = { flags: {} };
  private sig = '';
  private timer: NodeJS.Timeout | undefined;
  private listeners: Array<(names: string[]) => void> = [];
  lastError: string | undefined;

  /** `warn`: told once each time the file turns bad (a hand edit gone wrong), not at every poll. */
  constructor(
    readonly file: string,
    private readonly warn?: (message: string) => void,
  ) {
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
      const message = (err as Error).message;
      if (message !== this.lastError) this.warn?.(`${message}; ${this.sig === '' ? 'every flag answers its default until then' : 'the last good flags stay in force'}`);
      this.lastError = message;
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
export function initFlags(varDir: string, pollMs = 250, warn?: (message: string) => void): FlagStore {
  active?.stop();
  const store = new FlagStore(flagsPath(varDir), warn);
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
