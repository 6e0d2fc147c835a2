// `bin/APP crashes`, `bin/APP flags`, `bin/APP metrics`: the production hooks of issue 6.
// crashes and flags work on the files (log/crash/, var/flags.json), so they answer even when the
// release is down; metrics asks the running supervisor for the aggregate over all workers.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { ReleaseRoot } from '../release/layout.ts';
import { listCrashes } from '../runtime/crash.ts';
import { FlagInputError, flagsPath, readFlags, setFlag, unsetFlag, type FlagRule } from '../runtime/flags-file.ts';
import { ControlError, request } from './client.ts';
import { table } from './format.ts';

type Die = (msg: string, code?: number) => never;

export function hooksCommands(program: Command, rel: ReleaseRoot, name: string, die: Die): void {
  const crashDir = path.join(rel.logDir, 'crash');

  const crashes = program
    .command('crashes')
    .description(`list the crash reports in log/crash/ (uncaught exceptions and unhandled rejections of workers), oldest first`)
    .option('--json', 'print JSON')
    .option('-n, --last <n>', 'only the last N reports')
    .action((opts: { json?: boolean; last?: string }) => {
      let list = listCrashes(crashDir);
      if (opts.last !== undefined) {
        const n = Number(opts.last);
        if (!Number.isInteger(n) || n < 1) die(`crashes: --last must be a whole number >= 1, got ${JSON.stringify(opts.last)}`, 2);
        list = list.slice(-n);
      }
      if (opts.json) return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      if (!list.length) return void process.stdout.write(`no crash reports in ${path.relative(rel.root, crashDir) || crashDir}\n`);
      const rows = [['TIME', 'PID', 'RELEASE', 'KIND', 'ERROR', 'FILE']];
      for (const c of list) rows.push([c.at, String(c.pid), c.release, c.kind, c.error.length > 80 ? c.error.slice(0, 77) + '...' : c.error, c.file]);
      process.stdout.write(`${table(rows)}\n\n${list.length} report(s); show one: bin/${name} crashes show latest\n`);
    });
  crashes
    .command('show')
    .description('print one crash report (error, stack, release, memory, last log lines)')
    .argument('<file>', 'a file name from `crashes`, or "latest"')
    .action((file: string) => {
      const list = listCrashes(crashDir);
      const pick = file === 'latest' ? list[list.length - 1]?.file : list.find((c) => c.file === file || c.file === path.basename(file))?.file;
      if (!pick) die(file === 'latest' ? 'crashes show: there are no crash reports' : `crashes show: no report named "${file}" (see: bin/${name} crashes)`);
      process.stdout.write(readFileSync(path.join(crashDir, pick), 'utf8'));
    });

  const flagsCmd = program.command('flags').description('feature flags in var/flags.json (an OpenFeature provider in every worker; changes apply within a second, and survive restarts and upgrades)');
  const file = flagsPath(rel.varDir);
  const show = (n: string, r: FlagRule) => [n, r.state === 'percent' ? `${r.percent ?? 0}%` : r.state, (r.for ?? []).join(',') || '-', r.updatedAt ?? '-'];
  flagsCmd
    .command('list')
    .description('list every flag and its rule')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      let data;
      try {
        data = readFlags(file);
      } catch (err) {
        die(`flags: ${(err as Error).message}`);
      }
      if (opts.json) return void process.stdout.write(JSON.stringify(data.flags, null, 2) + '\n');
      const names = Object.keys(data.flags).sort();
      if (!names.length) return void process.stdout.write('no flags set (every flag answers its default)\n');
      process.stdout.write(table([['FLAG', 'STATE', 'FOR', 'UPDATED'], ...names.map((n) => show(n, data.flags[n]!))]) + '\n');
    });
  flagsCmd
    .command('set')
    .description('set a flag: on (everyone), off (kill switch: no one), PERCENT (e.g. 25%: that share of targeting keys), or --for KEY (add a key)')
    .argument('<name>', 'flag name, e.g. new_pricing')
    .argument('[value]', 'on | off | PERCENT')
    .addOption(new Option('--for <key>', 'turn the flag on for this targeting key (e.g. a customer id)'))
    .option('--json', 'print the new rule as JSON')
    .action((flag: string, value: string | undefined, opts: { for?: string; json?: boolean }) => {
      if (value === undefined && opts.for === undefined) die('flags set: give a value (on, off, PERCENT) or --for KEY', 2);
      try {
        const rule = setFlag(file, flag, { value, forKey: opts.for });
        if (opts.json) return void process.stdout.write(JSON.stringify({ name: flag, rule }) + '\n');
        const [, state, keys] = show(flag, rule);
        process.stdout.write(`flag ${flag}: ${state}${rule.for?.length && rule.state !== 'on' ? `, and on for ${keys}` : ''} (workers apply it within a second)\n`);
      } catch (err) {
        die(`flags set: ${(err as Error).message}`, err instanceof FlagInputError ? 2 : 1);
      }
    });

  flagsCmd
    .command('unset')
    .description("remove a flag's rule: every worker answers the code's default again (within a second)")
    .argument('<name>', 'flag name, e.g. new_pricing')
    .option('--json', 'print {"name", "unset"} (unset: false when it was not set)')
    .action((flag: string, opts: { json?: boolean }) => {
      try {
        const had = unsetFlag(file, flag);
        if (opts.json) return void process.stdout.write(JSON.stringify({ name: flag, unset: had }) + '\n');
        process.stdout.write(had ? `flag ${flag}: unset, the code's default applies (workers apply it within a second)\n` : `flag ${flag} was not set: nothing to do\n`);
      } catch (err) {
        die(`flags unset: ${(err as Error).message}`, err instanceof FlagInputError ? 2 : 1);
      }
    });

  program
    .command('metrics')
    .description('print the Prometheus metrics aggregated over all workers, plus the supervisor counters (the same text as GET /metrics)')
    .action(async () => {
      try {
        const r = (await request(rel, 'metrics')) as { text: string };
        process.stdout.write(r.text);
      } catch (err) {
        die((err as Error).message, err instanceof ControlError && err.code === 'not-running' ? 3 : 1);
      }
    });
}
