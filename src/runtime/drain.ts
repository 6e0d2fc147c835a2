// Graceful drain of an http.Server that shares its listening socket with other workers.
//
// Why not server.close(): since Node 19 it also closes idle keep-alive sockets at once, and a
// pooled client that picks such a socket in that instant gets ECONNRESET (http-terminator #48).
// Instead we stop accepting, answer every in-flight and later request on an open connection with
// `Connection: close` (so clients move to other workers), and let idle sockets end by the
// server's own keep-alive timeout, which clients are told in the Keep-Alive header and respect.
import net from 'node:net';
import type { Server, ServerResponse, IncomingMessage } from 'node:http';

export interface InFlight {
  method: string;
  url: string;
  startedAt: number;
}

export class ConnectionTracker {
  private sockets = new Set<net.Socket>();
  private inflight = new Map<ServerResponse, InFlight>();
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly server: Server) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.checkIdle();
      });
    });
    // Runs before the app's own handler, so the header is set before anything is written.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      this.inflight.set(res, { method: req.method ?? '?', url: req.url ?? '?', startedAt: Date.now() });
      if (this.draining) res.setHeader('connection', 'close');
      res.once('close', () => {
        this.inflight.delete(res);
        this.checkIdle();
      });
    });
  }

  get inFlightCount(): number {
    return this.inflight.size;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Steer every open connection to close after its current request (clients reconnect elsewhere). */
  closeAfterResponse(): void {
    if (this.draining) return;
    this.draining = true;
    for (const res of this.inflight.keys()) {
      if (!res.headersSent) res.setHeader('connection', 'close');
    }
  }

  /** Stop accepting new connections; the socket stays open in the supervisor and other workers. */
  beginDrain(): void {
    this.closeAfterResponse();
    if (this.server.listening) net.Server.prototype.close.call(this.server);
    this.checkIdle();
  }

  /** Resolves when no connection is left open. */
  whenIdle(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Requests still running; used to log what a stop timeout cuts. */
  snapshot(): Array<{ method: string; url: string; ageMs: number }> {
    const now = Date.now();
    return [...this.inflight.values()].map((r) => ({ method: r.method, url: r.url, ageMs: now - r.startedAt }));
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private checkIdle(): void {
    if (!this.draining || this.server.listening || this.sockets.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
