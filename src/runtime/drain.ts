// Graceful drain of an http.Server that shares its listening socket with other workers.
//
// Why not server.close(): since Node 19 it also closes idle keep-alive sockets at once, and a
// pooled client that picks such a socket in that instant gets ECONNRESET (http-terminator #48).
// Instead we stop accepting, answer every in-flight and later request on an open connection with
// `Connection: close` (so clients move to other workers), and let idle sockets end by the
// server's own keep-alive timeout, which clients are told in the Keep-Alive header and respect.
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import type { Server, ServerResponse, IncomingMessage } from 'node:http';
import type { RequestFeed } from './context.ts';

/** A socket's responses not finished yet (usually 0 or 1; more when pipelined). */
const RESPONSES = Symbol('slipway.responses');
type Tracked = net.Socket & { [RESPONSES]?: Array<{ res: ServerResponse; startedAt: number }> };
type Message = { request: IncomingMessage; response: ServerResponse; socket: Tracked; server: Server };

/**
 * Tracks connections and the requests in flight on them. Requests are seen through Node's own
 * http.server.request.start / response.finish channels (no listener or closure per response,
 * which measured about 2 µs a request on GET /hello), or, when the production hooks instrument the
 * server, from them (useFeed); connections through 'connection' and 'close'.
 */
export class ConnectionTracker {
  private sockets = new Set<net.Socket>();
  private inflight = 0;
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly server: Server) {
    server.on('connection', (socket: Tracked) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        // Requests whose response never finished (client gone, destroyed at the stop timeout).
        const open = socket[RESPONSES];
        if (open) this.inflight -= open.length;
        socket[RESPONSES] = undefined;
        this.checkIdle();
      });
    });
    // Published before the 'request' event: the header is set before the app writes anything.
    const onStart = (message: unknown): void => {
      const m = message as Message;
      if (m.server !== this.server) return;
      const entry = { res: m.response, startedAt: performance.now() };
      const open = m.socket[RESPONSES];
      if (open === undefined) m.socket[RESPONSES] = [entry];
      else open.push(entry);
      this.inflight++;
      if (this.draining) m.response.setHeader('connection', 'close');
    };
    const onFinish = (message: unknown): void => {
      const m = message as Message;
      const open = m.socket[RESPONSES];
      if (m.server !== this.server || open === undefined) return;
      const i = open.length === 1 ? (open[0]!.res === m.response ? 0 : -1) : open.findIndex((e) => e.res === m.response);
      if (i < 0) return;
      if (open.length === 1) open.pop();
      else open.splice(i, 1);
      this.inflight--;
      this.checkIdle();
    };
    diagnostics.subscribe('http.server.request.start', onStart);
    diagnostics.subscribe('http.server.response.finish', onFinish);
    this.unsubscribe = () => {
      diagnostics.unsubscribe('http.server.request.start', onStart);
      diagnostics.unsubscribe('http.server.response.finish', onFinish);
    };
    server.once('close', () => this.unsubscribe());
  }

  private unsubscribe: () => void;
  private feed: RequestFeed | undefined;

  /**
   * Take requests from the hooks' instrumentation (context.ts), which sees each one anyway, instead
   * of Node's channels: it calls requestStarted() and requestEnded().
   */
  useFeed(feed: RequestFeed): void {
    this.unsubscribe();
    this.feed = feed;
  }

  requestStarted(res: ServerResponse): void {
    if (this.draining) res.setHeader('connection', 'close');
  }

  requestEnded(): void {
    this.checkIdle();
  }

  get inFlightCount(): number {
    return this.feed ? this.feed.inFlight : this.inflight;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private *open(): Generator<{ res: ServerResponse; startedAt: number }> {
    for (const s of this.sockets) yield* this.feed ? this.feed.openOn(s) : ((s as Tracked)[RESPONSES] ?? []);
  }

  /** Steer every open connection to close after its current request (clients reconnect elsewhere). */
  closeAfterResponse(): void {
    if (this.draining) return;
    this.draining = true;
    for (const { res } of this.open()) {
      if (!res.headersSent) res.setHeader('connection', 'close');
    }
  }

  /**
   * Stop accepting new connections; the socket stays open in the supervisor and other workers.
   * Open connections are served as before (net's close, not http's, which would end idle ones).
   */
  stopAccepting(): void {
    if (this.server.listening) net.Server.prototype.close.call(this.server);
  }

  beginDrain(): void {
    this.closeAfterResponse();
    this.stopAccepting();
    this.checkIdle();
  }

  /** Resolves when no connection is left open. */
  whenIdle(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Requests still running; used to log what a stop timeout cuts. */
  snapshot(): Array<{ method: string; url: string; ageMs: number }> {
    const now = performance.now();
    return [...this.open()].map(({ res, startedAt }) => ({ method: res.req?.method ?? '?', url: res.req?.url ?? '?', ageMs: Math.round(now - startedAt) }));
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
