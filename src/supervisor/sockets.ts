// The listening socket the workers share. The supervisor binds it but never accepts on it: the
// first worker calls listen(2) on the shared socket, and because the supervisor keeps its fd open
// the socket stays in LISTEN while workers come and go, so new connections wait in the kernel
// backlog instead of being refused. Under systemd socket activation the socket is fd 3.
import net from 'node:net';

export interface ListenSocket {
  fd: number;
  host: string;
  port: number;
  activated: boolean;
  close(): void;
}

type RawHandle = { fd: number; getsockname(out: Record<string, unknown>): number; close(): void };
const createServerHandle = (net as unknown as { _createServerHandle(address: string, port: number, addressType: number): RawHandle | number })._createServerHandle;

export async function bindListenSocket(host: string, port: number, env: NodeJS.ProcessEnv = process.env): Promise<ListenSocket> {
  if (env.LISTEN_FDS && Number(env.LISTEN_PID) === process.pid) {
    const count = Number(env.LISTEN_FDS);
    if (!(count >= 1)) throw new Error(`LISTEN_FDS: expected at least 1 socket from systemd, got ${JSON.stringify(env.LISTEN_FDS)}`);
    // Our children must not think systemd's variables are meant for them.
    delete env.LISTEN_FDS;
    delete env.LISTEN_PID;
    delete env.LISTEN_FDNAMES;
    return { fd: 3, host, port, activated: true, close: () => undefined };
  }
  let address = host;
  if (net.isIP(address) === 0) {
    try {
      // Loaded only for a host name: ~0.3 MB of the supervisor's resident memory otherwise.
      address = (await process.getBuiltinModule('node:dns/promises').lookup(host)).address;
    } catch {
      throw new Error(`HOST: cannot resolve ${JSON.stringify(host)}`);
    }
  }
  const handle = createServerHandle(address, port, net.isIP(address));
  if (typeof handle === 'number') throw bindError(address, port, handle);
  // libuv holds back EADDRINUSE from bind(2) until listen(2) (its "delayed error"), and the
  // supervisor never listens: getsockname reports it. Unchecked, the workers' listen(2) bound the
  // unbound socket to a random port, and the release "started" somewhere nobody looked.
  const out: Record<string, unknown> = {};
  const err = handle.getsockname(out);
  if (err !== 0 || typeof out.port !== 'number') {
    handle.close();
    throw bindError(address, port, err || -98);
  }
  return { fd: handle.fd, host: address, port: out.port, activated: false, close: () => handle.close() };
}

function bindError(address: string, port: number, code: number): Error {
  const what = code === -98 ? 'EADDRINUSE (address already in use)' : code === -13 ? 'EACCES (permission denied)' : `error ${code}`;
  return new Error(`PORT: cannot bind ${address}:${port}: ${what}`);
}
