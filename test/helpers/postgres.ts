// A throwaway PostgreSQL 15 cluster for tests: initdb + pg_ctl from the machine image, data and
// unix socket in a temp dir, TCP on 127.0.0.1 with a free port. TCP connections (the release's)
// need a password (scram-sha-256), so DATABASE_URL carries a real secret that no log may show;
// the unix socket (psql here) trusts. initdb refuses root, so the server runs as the "postgres"
// system user (created by .ci/run, or here, when missing).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, onCleanup } from './release.ts';

export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface Postgres {
  /** postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres */
  url: string;
  password: string;
  port: number;
  dir: string;
  stop(): void;
  start(): void;
  psql(sql: string): string;
}

function ensureUser(): { uid: number; gid: number } {
  const ids = () => {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  };
  try {
    return ids();
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    return ids();
  }
}

export function pgAvailable(): boolean {
  return existsSync(path.join(PG_BIN, 'initdb')) && existsSync(path.join(PG_BIN, 'pg_ctl'));
}

export async function startPostgres(): Promise<Postgres> {
  const { uid, gid } = ensureUser();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'slipway-pg-'));
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const as = (bin: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(PG_BIN, bin), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, timeout: 120_000 });
  let running = false;
  const password = `pg-${randomBytes(9).toString('base64url')}`;
  const pg: Postgres = {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    password,
    port,
    dir,
    start() {
      as('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=100`, 'start']);
      running = true;
    },
    stop() {
      if (!running) return;
      as('pg_ctl', ['-D', data, '-w', '-t', '60', '-m', 'fast', 'stop']);
      running = false;
    },
    psql(sql: string) {
      return as('psql', ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql]).trim();
    },
  };
  onCleanup(() => {
    try {
      pg.stop();
    } catch {
      // fall back to the postmaster pid
      try {
        as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } catch {
        // not running
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const pwfile = path.join(dir, 'pwfile');
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  chownSync(pwfile, uid, gid);
  as('initdb', ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-local', 'trust', '--auth-host', 'scram-sha-256', '-E', 'UTF8', '--no-sync', '--locale=C']);
  rmSync(pwfile);
  pg.start();
  return pg;
}
