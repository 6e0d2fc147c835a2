// run_erl for Node: worker output goes to log/NAME.log with size-based rotation
// (NAME.log.1 … NAME.log.GENERATIONS), and through to our stdout for journald/containers.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export class RotatingLog {
  private fd: number;
  private size: number;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly generations: number,
    private readonly echo: boolean,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(text: string | Buffer): void {
    const buf = typeof text === 'string' ? Buffer.from(text) : text;
    if (this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    writeSync(this.fd, buf);
    this.size += buf.length;
    if (this.echo) {
      try {
        writeSync(1, buf);
      } catch {
        // stdout gone (closed pipe): the file still has it.
      }
    }
  }

  private rotate(): void {
    closeSync(this.fd);
    rmSync(`${this.file}.${this.generations}`, { force: true });
    for (let i = this.generations - 1; i >= 1; i--) {
      if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    }
    renameSync(this.file, `${this.file}.1`);
    this.fd = openSync(this.file, 'a', 0o640);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Splits a stream into whole lines so that two workers' output never interleaves mid-line. A chunk
 * that ends a line with nothing held back is passed on as it is (no decode, no re-encode): workers
 * write whole lines in batches, so that is nearly every chunk.
 */
export function lineSplitter(onLines: (text: string | Buffer) => void): { push(chunk: Buffer): void; flush(): void } {
  let rest = '';
  return {
    push(chunk) {
      if (rest === '' && chunk.length > 0 && chunk[chunk.length - 1] === 0x0a) {
        onLines(chunk);
        return;
      }
      const text = rest + chunk.toString('utf8');
      const cut = text.lastIndexOf('\n');
      if (cut < 0) {
        rest = text;
        if (rest.length > 64 * 1024) {
          onLines(rest + '\n');
          rest = '';
        }
        return;
      }
      rest = text.slice(cut + 1);
      onLines(text.slice(0, cut + 1));
    },
    flush() {
      if (rest) onLines(rest + '\n');
      rest = '';
    },
  };
}
