// sd_notify: tell systemd when we are ready, reloading, stopping, and that we are alive.
// Only active when systemd gave us NOTIFY_SOCKET; a no-op otherwise. Node core has no unix
// datagram sockets, so this uses unix-dgram (native, shipped in releases/VSN/node_modules).
import { createRequire } from 'node:module';

export interface Notifier {
  notify(state: string): void;
  close(): void;
}

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: 'error' | 'congestion', fn: (...args: unknown[]) => void): void;
  close(): void;
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env, log: (msg: string) => void = (m) => process.stderr.write(m + '\n')): Notifier | undefined {
  const target = env.NOTIFY_SOCKET;
  if (!target) return undefined;
  // Only we talk to systemd: workers and migration processes must not inherit the socket.
  const watchdogUsec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (target.startsWith('@')) {
    log(`sd_notify: abstract NOTIFY_SOCKET ${target} is not supported; systemd notifications are off`);
    return undefined;
  }
  let sock: DgramSocket;
  try {
    // import.meta is empty in the CommonJS supervisor bundle (supervisor.cjs), which has __filename.
    const dgram = createRequire(import.meta.url ?? __filename)('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket };
    sock = dgram.createSocket('unix_dgram');
  } catch (err) {
    log(`sd_notify: cannot load unix-dgram (${(err as Error).message}); systemd notifications are off`);
    return undefined;
  }
  sock.on('error', (err) => log(`sd_notify: ${(err as Error).message}`));
  sock.on('congestion', () => undefined);
  // WatchdogSec: ping at a quarter of the interval; without it, WATCHDOG=1 is not sent at all.
  const watchdogEveryMs = watchdogUsec > 0 && watchdogPid === process.pid ? Math.max(100, watchdogUsec / 4000) : Infinity;
  let lastWatchdog = 0;
  let closed = false;
  return {
    notify(state: string) {
      if (closed) return;
      if (state === 'WATCHDOG=1') {
        const now = Date.now();
        if (watchdogEveryMs === Infinity || now - lastWatchdog < watchdogEveryMs) return;
        lastWatchdog = now;
      }
      const msg = state === 'READY=1' ? `READY=1\nSTATUS=serving\nMAINPID=${process.pid}` : state === 'STOPPING=1' ? 'STOPPING=1\nSTATUS=draining' : state === 'RELOADING=1' ? 'RELOADING=1\nSTATUS=switching releases' : state;
      const buf = Buffer.from(msg);
      sock.send(buf, 0, buf.length, target, (err) => err && log(`sd_notify: ${state}: ${err.message}`));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        sock.close();
      } catch {
        // already closed
      }
    },
  };
}
