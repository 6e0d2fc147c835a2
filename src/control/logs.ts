// `bin/APP logs [-f] [-n N]`: the captured worker and supervisor log (log/NAME.log).
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ReleaseRoot } from '../release/layout.ts';

type Die = (msg: string, code?: number) => never;

function tail(file: string, n: number): { text: string; size: number } {
  const size = statSync(file).size;
  const want = Math.min(size, 64 * 1024 + n * 512);
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(want);
  readSync(fd, buf, 0, want, size - want);
  closeSync(fd);
  const lines = buf.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return { text: lines.slice(-n).join('\n') + (lines.length ? '\n' : ''), size };
}

export function logsCommand(program: Command, rel: ReleaseRoot, name: string, die: Die): void {
  program
    .command('logs')
    .description(`print the last lines of log/${name}.log (workers and supervisor); -f follows across rotations`)
    .option('-n, --lines <n>', 'how many lines', '50')
    .option('-f, --follow', 'keep printing new lines')
    .action(async (opts: { lines: string; follow?: boolean }) => {
      const file = path.join(rel.logDir, `${name}.log`);
      const n = Number(opts.lines);
      if (!Number.isInteger(n) || n < 0) die(`logs: -n must be a whole number, got ${JSON.stringify(opts.lines)}`, 2);
      if (!existsSync(file)) die(`logs: ${file} does not exist yet (has the release run?)`);
      const first = tail(file, n);
      process.stdout.write(first.text);
      if (!opts.follow) return;
      let pos = first.size;
      let ino = statSync(file).ino;
      for (;;) {
        await new Promise((r) => setTimeout(r, 200));
        let st;
        try {
          st = statSync(file);
        } catch {
          continue;
        }
        if (st.ino !== ino || st.size < pos) {
          ino = st.ino;
          pos = 0;
        }
        if (st.size > pos) {
          const fd = openSync(file, 'r');
          const buf = Buffer.alloc(st.size - pos);
          readSync(fd, buf, 0, buf.length, pos);
          closeSync(fd);
          process.stdout.write(buf);
          pos = st.size;
        }
      }
    });
}
