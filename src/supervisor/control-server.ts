// The control channel: a unix socket in RELEASE_TMP (mode 0600) and a cookie. No TCP listener.
// One request per connection: a JSON line in; zero or more {"progress"} lines and one result line out.
import net from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import { LOG_LEVELS, REQUEST_LOG_MODES, type ControlCommand, type ControlRequest, type ControlResponse, type LogLevel, type RequestLogMode } from '../protocol.ts';
import type { Supervisor } from './supervisor.ts';
import { SwitchError } from './errors.ts';

const COMMANDS: ControlCommand[] = ['ping', 'status', 'stop', 'restart', 'rpc', 'remote', 'upgrade', 'rollback', 'log-level', 'request-log', 'metrics'];
const MAX_REQUEST = 256 * 1024;

export function startControlServer(sup: Supervisor, socketPath: string, cookie: string): Promise<net.Server> {
  const want = Buffer.from(cookie);
  const server = net.createServer((socket) => {
    let buf = '';
    socket.setEncoding('utf8');
    const reply = (r: ControlResponse) => {
      if (!socket.destroyed) socket.write(JSON.stringify(r) + '\n');
    };
    const fail = (error: string, code?: string) => {
      reply({ ok: false, error, code });
      socket.end();
    };
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) return fail('request too large', 'bad-request');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      socket.removeAllListeners('data');
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        return fail('bad request: not a JSON line', 'bad-request');
      }
      if (typeof req !== 'object' || req === null || typeof req.cookie !== 'string' || typeof req.cmd !== 'string') {
        return fail('bad request: expected {"cookie": string, "cmd": string}', 'bad-request');
      }
      const given = Buffer.from(req.cookie);
      if (!sameBytes(given, want)) {
        sup.logLine('warn', 'control: refused a request with a wrong cookie', { cmd: String(req.cmd).slice(0, 32) });
        return fail('refused: wrong cookie (check RELEASE_COOKIE or releases/COOKIE)', 'cookie');
      }
      if (!COMMANDS.includes(req.cmd)) return fail(`unknown command "${String(req.cmd).slice(0, 32)}"`, 'bad-request');
      handle(sup, req, (msg) => reply({ progress: msg }), cookie).then(
        (result) => {
          reply({ ok: true, result });
          socket.end();
          if (req.cmd === 'stop') setImmediate(() => void sup.shutdown(0, 'stop command'));
        },
        (err: Error) => fail(err.message, err instanceof SwitchError ? err.code : 'failed'),
      );
    });
  });
  rmSync(socketPath, { force: true });
  const old = process.umask(0o177);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      process.umask(old);
      chmodSync(socketPath, 0o600);
      resolve(server);
    });
  });
}

async function handle(sup: Supervisor, req: ControlRequest, progress: (m: string) => void, cookie: string): Promise<unknown> {
  const args = req.args ?? {};
  const str = (k: string): string => {
    const v = args[k];
    if (typeof v !== 'string' || !v) throw new Error(`bad request: "${k}" must be a non-empty string`);
    return v;
  };
  switch (req.cmd) {
    case 'ping':
      return { pid: process.pid, version: sup.current };
    case 'status':
      return sup.status();
    case 'stop':
      return { pid: process.pid };
    case 'restart':
      return sup.switchTo(sup.current, 'restart', progress);
    case 'rpc':
      return { json: await sup.rpc(str('expr')) };
    case 'remote':
      return sup.remote(cookie);
    case 'upgrade':
      return sup.switchTo(str('version'), 'upgrade', progress);
    case 'rollback': {
      const v = typeof args.version === 'string' && args.version ? args.version : sup.rollbackTarget();
      return sup.switchTo(v, 'rollback', progress);
    }
    case 'log-level': {
      const level = str('level');
      if (!isLogLevel(level)) throw new Error(`bad level "${level}" (${LOG_LEVELS.join(', ')})`);
      return { workers: sup.setLogLevel(level), level };
    }
    case 'request-log': {
      const mode = str('mode');
      if (!(REQUEST_LOG_MODES as readonly string[]).includes(mode)) throw new Error(`bad request-log mode "${mode}" (${REQUEST_LOG_MODES.join(', ')})`);
      return { workers: sup.setRequestLog(mode as RequestLogMode), mode };
    }
    case 'metrics':
      return { text: await sup.metrics.text() };
  }
}

/**
 * Constant-time comparison of two byte strings of the same length (crypto.timingSafeEqual's
 * contract), without node:crypto: loading it costs the long-lived supervisor ~1.4 MB of resident
 * memory for this one call. No early exit: every byte is read whatever the first difference.
 */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function isLogLevel(level: string): level is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(level);
}
