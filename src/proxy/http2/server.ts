/**
 * The server of `http2`, `grpc` and `auto` listeners: one TCP port serving HTTP/2 with prior
 * knowledge (h2c, RFC 9113 3.3) and HTTP/1.1. The first bytes of a connection decide: the
 * h2 client preface goes to a node:http2 session, anything else to the proxy's own
 * HTTP/1.1 connection (http1/connection.ts). Both hand requests to the same handler as
 * Downstream objects (HTTP/2 streams through H2Downstream).
 *
 * TLS: with the mTLS work a tls.Server feeds acceptH2/acceptH1 by ALPN (`h2` / `http/1.1`)
 * instead of sniffing; everything after the accept is the same.
 */
import http2, { type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Downstream } from '../http/downstream.js';
import { Http1Connection, type Http1Limits } from '../http1/connection.js';
import { parseH2Request } from './headers.js';
import { H2_CONNECTION_WINDOW, H2_MAX_SESSION_MEMORY, H2_SETTINGS } from './settings.js';
import { H2Downstream } from './stream.js';

export type DownstreamHandler = (stream: Downstream) => void;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const { NGHTTP2_FLAG_END_STREAM } = http2.constants;

export class H2ListenerServer {
  handler: DownstreamHandler;
  private readonly limits: Http1Limits;
  private readonly server: net.Server;
  private readonly h2: Http2Server;
  private readonly h1 = new Set<Http1Connection>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly sniffing = new Set<Socket>();
  private readonly dispatch: DownstreamHandler;
  private readonly onH1End: (c: Http1Connection) => void;

  constructor(handler: DownstreamHandler, limits: Http1Limits) {
    this.handler = handler;
    this.limits = limits;
    this.dispatch = (s) => this.handler(s);
    this.onH1End = (c) => this.h1.delete(c);
    this.h2 = http2.createServer({ settings: H2_SETTINGS, maxSessionMemory: H2_MAX_SESSION_MEMORY });
    this.h2.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.h2.on('stream', (stream: ServerHttp2Stream, _h: unknown, flags: number, raw: string[]) =>
      this.onStream(stream, flags, raw),
    );
    this.server = net.createServer({ noDelay: true }, (socket) => this.sniff(socket));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting; idle connections close now, busy ones after their in-flight work. */
  close(): Promise<void> {
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sniffing) s.destroy();
    for (const c of this.h1) {
      c.draining = true;
      if (c.idle) c.destroy();
    }
    // GOAWAY; open streams finish, then the session closes.
    for (const s of this.sessions) s.close();
    return done;
  }

  closeAll(): void {
    for (const s of this.sniffing) s.destroy();
    for (const c of this.h1) c.destroy();
    for (const s of this.sessions) s.destroy();
  }

  /** Reads until the first bytes tell HTTP/2 prior knowledge from HTTP/1.x. */
  private sniff(socket: Socket): void {
    this.sniffing.add(socket);
    socket.setTimeout(this.limits.headersTimeoutMs);
    let buf: Buffer | null = null;
    const onTimeout = (): void => {
      socket.destroy();
    };
    const onClose = (): void => {
      this.sniffing.delete(socket);
    };
    const onData = (d: Buffer): void => {
      buf = buf === null ? d : Buffer.concat([buf, d]);
      const n = Math.min(buf.length, PREFACE.length);
      const h2 = buf.compare(PREFACE, 0, n, 0, n) === 0;
      if (h2 && buf.length < PREFACE.length) return;
      socket.off('data', onData);
      socket.off('timeout', onTimeout);
      socket.off('close', onClose);
      this.sniffing.delete(socket);
      socket.pause();
      socket.unshift(buf);
      if (h2) this.acceptH2(socket);
      else this.acceptH1(socket);
    };
    socket.on('data', onData);
    socket.on('timeout', onTimeout);
    socket.on('close', onClose);
    socket.on('error', noop);
  }

  /** An HTTP/2 connection (prior knowledge here; ALPN h2 later). */
  acceptH2(socket: Socket): void {
    socket.setTimeout(0);
    this.h2.emit('connection', socket);
  }

  /** An HTTP/1.x connection: the proxy's own HTTP/1.1 server code. */
  acceptH1(socket: Socket): void {
    this.h1.add(new Http1Connection(socket, this.limits, this.dispatch, this.onH1End));
    socket.resume();
  }

  private onSession(session: ServerHttp2Session): void {
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    session.on('error', noop);
    try {
      session.setLocalWindowSize(H2_CONNECTION_WINDOW);
    } catch {
      // session already closing
    }
    // Idle (no frames): GOAWAY; streams still open finish normally.
    session.setTimeout(this.limits.idleTimeoutMs, () => session.close());
  }

  private onStream(stream: ServerHttp2Stream, flags: number, raw: string[]): void {
    const head = parseH2Request(raw);
    if (head.method === 'CONNECT') {
      stream.on('error', noop);
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    this.handler(new H2Downstream(stream, head, (flags & NGHTTP2_FLAG_END_STREAM) !== 0));
  }
}

function noop(): void {}
