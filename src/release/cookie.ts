// The control cookie: 32 random bytes (hex) in releases/COOKIE, mode 0400; RELEASE_COOKIE overrides.
import { openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import type { ReleaseRoot } from './layout.ts';

export function readCookie(rel: ReleaseRoot, create: boolean): string {
  const fromEnv = process.env.RELEASE_COOKIE;
  if (fromEnv) return fromEnv;
  try {
    return readFileSync(rel.cookieFile, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) {
      throw new Error(`cannot read the cookie ${rel.cookieFile}: ${(err as NodeJS.ErrnoException).code ?? err} (set RELEASE_COOKIE or start the release once)`);
    }
  }
  // node:crypto only for a new cookie: the supervisor that reads one does without it (control-server.ts).
  const cookie = process.getBuiltinModule('node:crypto').randomBytes(32).toString('hex');
  try {
    const fd = openSync(rel.cookieFile, 'wx', 0o400);
    writeSync(fd, cookie + '\n');
    closeSync(fd);
    return cookie;
  } catch (err) {
    // Someone else created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(rel.cookieFile, 'utf8').trim();
    throw err;
  }
}
