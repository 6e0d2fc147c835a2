// Control client: one request on the supervisor's control socket, progress lines, one result.
import net from 'node:net';
import type { ControlCommand, ControlResponse } from '../protocol.ts';
import type { ReleaseRoot } from '../release/layout.ts';
import { readCookie } from '../release/cookie.ts';

export class ControlError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

export function request(rel: ReleaseRoot, cmd: ControlCommand, args: Record<string, unknown> = {}, onProgress?: (msg: string) => void): Promise<unknown> {
  const cookie = readCookie(rel, false);
  return new Promise((resolve, reject) => {
    const socket = net.connect(rel.controlSocket);
    let buf = '';
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      socket.destroy();
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ cookie, cmd, args }) + '\n'));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') settle(() => reject(new ControlError('not running (no supervisor answers on ' + rel.controlSocket + ')', 'not-running')));
      else if (err.code === 'EACCES') settle(() => reject(new ControlError(`permission denied on ${rel.controlSocket} (run as the release's user)`, 'permission')));
      else settle(() => reject(new ControlError(err.message, 'io')));
    });
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: ControlResponse;
        try {
          msg = JSON.parse(line) as ControlResponse;
        } catch {
          return settle(() => reject(new ControlError('bad answer from the supervisor', 'io')));
        }
        if ('progress' in msg) onProgress?.(msg.progress);
        else if (msg.ok) return settle(() => resolve(msg.result));
        else return settle(() => reject(new ControlError(msg.error, msg.code ?? 'failed')));
      }
    });
    socket.on('end', () => settle(() => reject(new ControlError('the supervisor closed the connection without an answer', 'io'))));
  });
}
