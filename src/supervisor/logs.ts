// run_erl for Node: worker output goes to log/NAME.log with size-based rotation
// (NAME.log.1 … NAME.log.GENERATIONS), and through to our stdout for journald/containers.
//
// Under `daemon` (nothing to echo) workers append their log lines to the file themselves (O_APPEND:
// each batch of whole lines lands whole), so the lines are not copied through a pipe and written a
// second time by the supervisor: about 1 µs of CPU per request on the server's core
// (bench/hooks.ts). The supervisor still writes its own lines and the workers' other output
// (console.log, stderr) here, checks the file's size on its heart timer, and after a rotation
// tells the workers to open the file again (`onRotate`).
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
    /** Called after each rotation (the supervisor tells workers that write here to reopen). */
    private readonly onRotate?: () => void,
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

  /** Rotate if the file, which workers also append to, is past the limit or would be with `incoming` more bytes. */
  check(incoming = 0): boolean {
    if (this.fd < 0) return false;
    this.size = fstatSync(this.fd).size;
    if (this.size === 0 || this.size + incoming <= this.maxBytes) return false;
    this.rotate();
    return true;
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
    this.onRotate?.();
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Splits a stream into whole lines so that two workers' output never interleaves mid-line. Works on
 * bytes (no decode, no re-encode, and a UTF-8 character cut between two reads stays whole). A
 * chunk that ends a line with nothing held back is passed on as it is: workers write whole lines
 * in batches, so that is most chunks.
 */
export function lineSplitter(onLines: (text: string | Buffer) => void): { push(chunk: Buffer): void; flush(): void } {
  const NL = Buffer.from('\n');
  let rest: Buffer | undefined;
  return {
    push(chunk) {
      if (chunk.length === 0) return;
      const cut = chunk.lastIndexOf(0x0a);
      if (cut < 0) {
        rest = rest ? Buffer.concat([rest, chunk]) : chunk;
        if (rest.length > 64 * 1024) {
          onLines(Buffer.concat([rest, NL]));
          rest = undefined;
        }
        return;
      }
      const head = cut === chunk.length - 1 ? chunk : chunk.subarray(0, cut + 1);
      onLines(rest ? Buffer.concat([rest, head]) : head);
      rest = cut === chunk.length - 1 ? undefined : Buffer.from(chunk.subarray(cut + 1));
    },
    flush() {
      if (rest) onLines(Buffer.concat([rest, NL]));
      rest = undefined;
    },
  };
}
