// A minimal HTTP/1.1 keep-alive client for the load generator's hot path: one request at a time per
// connection, requests serialized to strings (cached for fixed routes), a small response parser
// (status line, the few headers we need, Content-Length or chunked bodies). Far less work per
// request than a general-purpose client, so the drill measures the server, not itself.
import net from 'node:net';

export interface Response {
  status: number;
  release: string | undefined;
  /** The value of the extra header the load was asked to record (e.g. x-pricing), if any. */
  variant?: string;
  body: string | undefined;
}

export interface Sender {
  request(method: string, path: string, headers: string, body: string | undefined, wantBody: boolean): Promise<Response>;
  close(): void;
}

export class HttpError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const CRLF2 = Buffer.from('\r\n\r\n');
/** How long before the server's keep-alive timeout an idle socket is given up (undici uses 1 s, then 2 s). */
const KEEP_ALIVE_MARGIN_MS = 1000;

interface Pending {
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
  wantBody: boolean;
  head: boolean;
}

export class Connection implements Sender {
  private socket: net.Socket | null = null;
  private pending: Pending | null = null;
  private buf: Buffer | null = null;
  // Response parse state
  private status = 0;
  private release: string | undefined;
  private variant: string | undefined;
  private close_ = false;
  private headerDone = false;
  private length = -1;
  private chunked = false;
  private body: Buffer[] = [];
  private bodySeen = 0;
  private timer: NodeJS.Timeout;
  private startedAt = 0;
  /** The server's keep-alive timeout (its Keep-Alive: timeout=N), and when the socket was last used. */
  private keepAliveMs = Infinity;
  private idleSince = 0;
  private readonly hostHeader: string;
  private static cache = new Map<string, string>();

  constructor(
    readonly host: string,
    readonly port: number,
    readonly timeoutMs: number,
    /** Lower-case name of one more response header to report (Response.variant), e.g. x-pricing. */
    readonly variantHeader?: string,
  ) {
    this.hostHeader = `Host: ${host.includes(':') ? `[${host}]` : host}:${port}\r\n`;
    this.timer = setTimeout(() => this.onTimer(), timeoutMs);
    this.timer.unref();
  }

  request(method: string, path: string, headers: string, body: string | undefined, wantBody: boolean): Promise<Response> {
    if (this.pending) return Promise.reject(new HttpError('connection busy', 'EBUSY'));
    let raw: string;
    if (body === undefined && !headers) {
      const key = method + ' ' + path;
      raw = Connection.cache.get(key) ?? '';
      if (!raw) {
        raw = `${method} ${path} HTTP/1.1\r\n${this.hostHeader}\r\n`;
        if (Connection.cache.size < 1000) Connection.cache.set(key, raw);
      }
    } else {
      raw = `${method} ${path} HTTP/1.1\r\n${this.hostHeader}${headers}${body !== undefined ? `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` : '\r\n'}`;
    }
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, wantBody, head: method === 'HEAD' };
      this.resetParser();
      this.startedAt = performance.now();
      this.timer.refresh();
      // Like pooled clients (undici: keepAliveTimeoutThreshold), a socket idle for nearly the
      // server's keep-alive timeout is not reused: the server may be closing it right now, and a
      // request written into that close is lost. A fresh connection instead.
      if (this.socket && this.startedAt - this.idleSince > this.keepAliveMs - KEEP_ALIVE_MARGIN_MS) {
        const old = this.socket;
        this.socket = null;
        old.destroy();
      }
      if (!this.socket) this.connect();
      this.socket!.write(raw);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = null;
    this.fail(new HttpError('client closed', 'UND_ERR_DESTROYED'));
  }

  private connect(): void {
    const s = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = s;
    this.buf = null;
    // Events of a socket we already let go of (closed, timed out) are not ours to report.
    s.on('data', (d: Buffer) => {
      if (this.socket === s) this.onData(d);
    });
    s.on('error', (err) => {
      if (this.socket !== s) return;
      this.socket = null;
      this.fail(err);
    });
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = null;
      this.fail(new HttpError('other side closed', 'UND_ERR_SOCKET'));
    });
  }

  private onTimer(): void {
    if (!this.pending) return;
    const left = this.timeoutMs - (performance.now() - this.startedAt);
    if (left > 1) {
      this.timer.refresh();
      return;
    }
    const s = this.socket;
    this.socket = null;
    this.fail(new HttpError(`no response within ${this.timeoutMs} ms`, 'ETIMEDOUT'));
    s?.destroy();
  }

  private fail(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    p.reject(err);
  }

  private resetParser(): void {
    this.status = 0;
    this.release = undefined;
    this.variant = undefined;
    this.close_ = false;
    this.headerDone = false;
    this.length = -1;
    this.chunked = false;
    this.body = [];
    this.bodySeen = 0;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    if (!this.pending) {
      this.buf = null; // unsolicited bytes: ignore
      return;
    }
    if (!this.headerDone) {
      const end = this.buf.indexOf(CRLF2);
      if (end < 0) return;
      const head = this.buf.toString('latin1', 0, end);
      this.buf = this.buf.subarray(end + 4);
      this.headerDone = true;
      this.status = Number(head.slice(9, 12));
      let i = head.indexOf('\r\n');
      while (i >= 0) {
        const next = head.indexOf('\r\n', i + 2);
        const line = head.slice(i + 2, next < 0 ? undefined : next);
        const c = line.indexOf(':');
        if (c > 0) {
          const name = line.slice(0, c).toLowerCase();
          if (name === 'content-length') this.length = Number(line.slice(c + 1));
          else if (name === 'transfer-encoding') this.chunked = /chunked/i.test(line);
          else if (name === 'connection') this.close_ = /close/i.test(line);
          else if (name === 'keep-alive') {
            const t = /timeout=(\d+)/i.exec(line);
            if (t) this.keepAliveMs = Number(t[1]) * 1000;
          }
          else if (name === 'x-release') this.release = line.slice(c + 1).trim();
          else if (name === this.variantHeader) this.variant = line.slice(c + 1).trim();
        }
        i = next;
      }
      if (this.pending.head || this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) this.length = 0;
      if (!this.chunked && this.length < 0) this.close_ = true; // body until close: not supported, drop the connection after
    }
    if (this.chunked) return this.onChunked();
    if (this.length >= 0) {
      const need = this.length - this.bodySeen;
      const take = Math.min(need, this.buf.length);
      if (take > 0 && this.pending.wantBody) this.body.push(this.buf.subarray(0, take));
      this.bodySeen += take;
      this.buf = this.buf.length > take ? this.buf.subarray(take) : null;
      if (this.bodySeen >= this.length) this.complete();
    }
  }

  private onChunked(): void {
    for (;;) {
      const buf = this.buf;
      if (!buf) return;
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const size = parseInt(buf.toString('latin1', 0, eol), 16);
      if (Number.isNaN(size)) {
        this.fail(new HttpError('bad chunked encoding', 'UND_ERR_SOCKET'));
        this.socket?.destroy();
        return;
      }
      if (size === 0) {
        // Last chunk (no trailers expected): "0\r\n\r\n".
        if (buf.length < eol + 4) return;
        this.buf = buf.length > eol + 4 ? buf.subarray(eol + 4) : null;
        return this.complete();
      }
      if (buf.length < eol + 2 + size + 2) return;
      if (this.pending?.wantBody) this.body.push(buf.subarray(eol + 2, eol + 2 + size));
      this.buf = buf.length > eol + 4 + size ? buf.subarray(eol + 4 + size) : null;
    }
  }

  private complete(): void {
    const p = this.pending!;
    this.pending = null;
    this.buf = null;
    this.idleSince = performance.now();
    if (this.close_) {
      const s = this.socket;
      this.socket = null;
      s?.destroy();
    }
    p.resolve({ status: this.status, release: this.release, variant: this.variant, body: p.wantBody ? Buffer.concat(this.body).toString() : undefined });
  }
}

/** A fixed set of connections; requests wait in a queue for a free one. */
export class ConnectionPool implements Sender {
  private free: Connection[] = [];
  private queue: Array<{ run: (c: Connection) => void; reject: (e: Error) => void }> = [];
  private all: Connection[] = [];
  private closed = false;

  constructor(host: string, port: number, size: number, timeoutMs: number, variantHeader?: string) {
    for (let i = 0; i < size; i++) this.all.push(new Connection(host, port, timeoutMs, variantHeader));
    this.free = [...this.all];
  }

  get busy(): number {
    return this.all.length - this.free.length;
  }

  request(method: string, path: string, headers: string, body: string | undefined, wantBody: boolean): Promise<Response> {
    if (this.closed) return Promise.reject(new HttpError('pool closed', 'UND_ERR_DESTROYED'));
    return new Promise((resolve, reject) => {
      const run = (c: Connection) => {
        c.request(method, path, headers, body, wantBody).then(
          (r) => {
            this.release(c);
            resolve(r);
          },
          (e: Error) => {
            this.release(c);
            reject(e);
          },
        );
      };
      const c = this.free.pop();
      if (c) run(c);
      else this.queue.push({ run, reject });
    });
  }

  private release(c: Connection): void {
    const next = this.queue.shift();
    if (next) next.run(c);
    else this.free.push(c);
  }

  close(): void {
    this.closed = true;
    for (const q of this.queue.splice(0)) q.reject(new HttpError('pool closed', 'UND_ERR_DESTROYED'));
    for (const c of this.all) c.close();
  }
}
