// Tiny flag parser: --name value or --name=value; numbers validated; --help prints usage.
import path from 'node:path';
import { parseArgs } from 'node:util';

export interface FlagSpec {
  [name: string]: { default: number | string | boolean; help: string };
}

export function flags<S extends FlagSpec>(usage: string, spec: S): { [K in keyof S]: S[K]['default'] } {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [k, v] of Object.entries(spec)) options[k] = { type: typeof v.default === 'boolean' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ options, allowPositionals: false, strict: true }));
  } catch (err) {
    return usageError((err as Error).message);
  }
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
      if (!Number.isFinite(n) || n < 0) return usageError(`--${k}: expected a non-negative number, got ${JSON.stringify(given)}`);
      out[k] = n;
    } else out[k] = given as string | boolean;
  }
  return out as { [K in keyof S]: S[K]['default'] };
}

/** Bad flags: one line on stderr and exit 2, no stack trace. */
function usageError(message: string): never {
  process.stderr.write(`${path.basename(process.argv[1] ?? 'bench')}: ${message} (--help lists the flags)\n`);
  process.exit(2);
}
