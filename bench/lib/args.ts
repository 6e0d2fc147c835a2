// Tiny flag parser: --name value or --name=value; numbers validated; --help prints usage.
import { parseArgs } from 'node:util';

export interface FlagSpec {
  [name: string]: { default: number | string | boolean; help: string };
}

export function flags<S extends FlagSpec>(usage: string, spec: S): { [K in keyof S]: S[K]['default'] } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [k, v] of Object.entries(spec)) options[k] = { type: typeof v.default === 'boolean' ? 'boolean' : 'string' };
  const { values } = parseArgs({ options, allowPositionals: false, strict: true });
  if (values.help) {
    process.stdout.write(`${usage}\n\n${Object.entries(spec).map(([k, v]) => `  --${k.padEnd(14)} ${v.help} (default: ${v.default})`).join('\n')}\n`);
    process.exit(0);
  }
  const out: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(spec)) {
    const given = values[k];
    if (given === undefined) out[k] = v.default;
    else if (typeof v.default === 'number') {
      const n = Number(given);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${k}: expected a non-negative number, got ${JSON.stringify(given)}`);
      out[k] = n;
    } else out[k] = given as string | boolean;
  }
  return out as { [K in keyof S]: S[K]['default'] };
}
