// `slipway gen systemd|compose|k8s|dockerfile|all` and `slipway gen --check [paths...]`.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { BuildError } from '../build/config.ts';
import { checkFile, kindOf, type Problem } from './check.ts';
import { generateAll, TARGETS, type Target } from './index.ts';
import { loadModel, type GenModel } from './model.ts';

interface GenOpts {
  dir?: string;
  out: string;
  check?: boolean;
  stdout?: boolean;
}

function fail(msg: string, code = 1): never {
  process.stderr.write(`slipway: ${msg}\n`);
  process.exit(code);
}

function listFiles(p: string): string[] {
  if (!existsSync(p)) fail(`gen --check: ${p}: no such file or directory`, 2);
  if (!statSync(p).isDirectory()) return [p];
  return readdirSync(p, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(p, e.name)) : [path.join(p, e.name)]))
    .sort();
}

export async function runCheck(paths: string[], opts: { out: string; model?: GenModel; drift: boolean }): Promise<Problem[]> {
  const problems: Problem[] = [];
  const files = (paths.length ? paths : [opts.out]).flatMap(listFiles);
  for (const f of files) {
    const rel = path.relative(process.cwd(), f) || f;
    problems.push(...(await checkFile(rel, readFileSync(f, 'utf8'), opts.model)));
  }
  if (opts.drift && opts.model) {
    const want = generateAll(opts.model, opts.out);
    const checked = new Set(files.map((f) => path.resolve(f)));
    for (const [rel, text] of Object.entries(want)) {
      const f = path.resolve(opts.out, rel);
      if (paths.length && !checked.has(f)) continue;
      const shown = path.relative(process.cwd(), f);
      if (!existsSync(f)) problems.push({ file: shown, message: `missing: \`slipway gen\` produces it` });
      else if (readFileSync(f, 'utf8') !== text) problems.push({ file: shown, message: `differs from what \`slipway gen\` produces from the release config (drift): regenerate it` });
    }
  }
  return problems;
}

export function register(program: Command): void {
  program
    .command('gen')
    .description(`generate ops files from the release config: ${TARGETS.join(', ')} or all (into --out); with --check, validate files and catch drift`)
    .argument('[what...]', `${TARGETS.join(' | ')} | all; with --check: files or directories to check (default: --out)`)
    .option('-C, --dir <dir>', 'app directory (with package.json "slipway")')
    .option('--out <dir>', 'output directory', 'ops')
    .option('--stdout', 'print the files instead of writing them')
    .option('--check', 'validate unit, compose, manifest and Docker files (unknown keys, timeouts) and compare them with what gen produces')
    .addHelpText(
      'after',
      `
Examples:
  slipway gen all -C examples/orders --out ops      write ops/systemd, ops/docker-compose.app.yml, ops/k8s, ops/Dockerfile
  slipway gen systemd --stdout                       print the units of the app in the current directory
  slipway gen --check -C examples/orders --out ops   exit 1 with one line per problem, 0 when all is well
  slipway gen --check my.service                     check one file (timeouts against its Environment=)`,
    )
    .action(async (what: string[], opts: GenOpts) => {
      const dir = opts.dir ?? '.';
      let model: GenModel | undefined;
      try {
        model = loadModel(dir);
      } catch (err) {
        if (!(err instanceof BuildError)) throw err;
        if (!opts.check || opts.dir !== undefined) fail(`gen: ${err.message}`);
      }
      if (opts.check) {
        const problems = await runCheck(what, { out: opts.out, model, drift: model !== undefined });
        for (const p of problems) process.stderr.write(`${p.file}: ${p.message}\n`);
        if (problems.length) process.exit(1);
        const n = (what.length ? what : [opts.out]).flatMap(listFiles).filter((f) => kindOf(f, readFileSync(f, 'utf8')) !== 'other').length;
        process.stdout.write(`gen --check: ${n} file(s) OK${model ? `, no drift from the ${model.name} release config` : ''}\n`);
        return;
      }
      if (!what.length) fail(`gen: say what to generate: ${TARGETS.join(', ')} or all (see: slipway gen --help)`, 2);
      const bad = what.find((w) => w !== 'all' && !(TARGETS as readonly string[]).includes(w));
      if (bad) fail(`gen: unknown target "${bad}" (expected ${TARGETS.join(', ')} or all)`, 2);
      const targets = what.includes('all') ? TARGETS : (what as Target[]);
      const files = generateAll(model!, opts.out, targets);
      for (const [rel, text] of Object.entries(files)) {
        if (opts.stdout) {
          process.stdout.write(`==> ${rel} <==\n${text}\n`);
          continue;
        }
        const f = path.join(opts.out, rel);
        mkdirSync(path.dirname(f), { recursive: true });
        writeFileSync(f, text);
        process.stdout.write(`wrote ${f}\n`);
      }
    });
}
