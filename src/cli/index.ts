// `slipway`: build releases, generate ops files, run drills.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { BuildError, buildRelease } from '../build/index.ts';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('slipway')
  .description('Releases, supervision, zero-downtime upgrades and drills for Node.js services')
  .version(version, '-V, --version', 'print the slipway version')
  // slipway's own options only before the command: `slipway release --version 1.1.0` is the release's.
  .enablePositionalOptions()
  .showSuggestionAfterError()
  .exitOverride();

function fail(msg: string, code = 1): never {
  process.stderr.write(`slipway: ${msg}\n`);
  process.exit(code);
}

program
  .command('release')
  .description('build _build/ENV/rel/NAME (bin script, releases/VSN, node flags, env.sh) and _build/ENV/NAME-VSN.tar.gz with its .sha256')
  .option('--version <version>', 'release version (default: package.json version)')
  .addOption(new Option('--env <name>', 'build environment').default('prod'))
  .option('--include-node', 'copy the running Node binary into the release (node/bin/node)')
  .option('--overlay <dir>', 'copy the files of DIR over releases/VSN (e.g. an env.sh)')
  .option('--out <dir>', 'output directory instead of _build/ENV')
  .option('-C, --dir <dir>', 'app directory', '.')
  .option('--json', 'print the result as JSON')
  .action(async (opts: { version?: string; env: string; includeNode?: boolean; overlay?: string; out?: string; dir: string; json?: boolean }) => {
    try {
      const r = await buildRelease({
        dir: path.resolve(opts.dir),
        version: opts.version,
        env: opts.env,
        includeNode: opts.includeNode,
        overlay: opts.overlay,
        out: opts.out,
        progress: opts.json ? undefined : (m) => process.stderr.write(`* ${m}\n`),
      });
      if (opts.json) return void process.stdout.write(JSON.stringify(r) + '\n');
      const show = (p: string) => (path.relative(process.cwd(), p).startsWith('..') ? p : path.relative(process.cwd(), p) || '.');
      const rel = show(r.releaseRoot);
      process.stdout.write(
        `Release ${r.name} ${r.version} (${r.env}) built in ${r.ms} ms\n` +
          `  ${rel}\n  ${show(r.tarball)} (${(r.bytes / 1024 / 1024).toFixed(1)} MB, sha256 ${r.sha256.slice(0, 12)}…)\n\n` +
          `  start:   ${rel}/bin/${r.name} start      (foreground)\n` +
          `  daemon:  ${rel}/bin/${r.name} daemon\n` +
          `  help:    ${rel}/bin/${r.name} help\n`,
      );
    } catch (err) {
      if (err instanceof BuildError) fail(err.message);
      throw err;
    }
  });

for (const extra of ['../gen/cli.ts', '../drill/cli.ts', './demo.ts']) {
  try {
    const mod = (await import(extra)) as { register?: (p: Command) => void };
    mod.register?.(program);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  fail((err as Error).message);
}
