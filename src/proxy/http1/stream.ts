/**
 * One HTTP/1.1 request/response exchange on a downstream connection: the parsed request
 * and a minimal response writer. Events go to a single `owner` object (the proxy's
 * Exchange) instead of emitters: no listeners or closures per request.
 */
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import type { Http1Connection } from './connection.js';
import type { RequestHead } from './head.js';

export interface StreamOwner {
  /** A piece of the request body (only when no bodyStream() was taken). */
  streamData(chunk: Buffer): void;
  streamEnd(): void;
  /** The connection can take more response bytes after write() returned false. */
  streamDrain(): void;
  /** The client went away before the response finished. */
  streamClosed(): void;
}

const CRLF = '\r\n';
/** Responses up to this size are copied behind their head and sent with a single write. */
const SINGLE_WRITE_LIMIT = 16 * 1024;

/** Request body as a Readable, for streaming it upstream; pauses the socket on backpressure. */
class BodyReadable extends Readable {
  constructor(private readonly conn: Http1Connection) {
    super();
  }
  override _read(): void {
    this.conn.resumeBody();
  }
}

export class Http1Stream {
  readonly conn: Http1Connection;
  readonly method: string;
  readonly url: string;
  readonly version: number;
  readonly rawHeaders: string[];
  readonly bodyMode: number;
  readonly contentLength: number;
  readonly keepAlive: boolean;
  owner: StreamOwner | null = null;
  readable: Readable | null = null;
  bodyBytes = 0;
  bodyDone: boolean;
  headersSent = false;
  finished = false;
  /** The connection closed before the response finished. */
  closed = false;
  /** Status written by writeHead (0 before). */
  status = 0;
  /** The connection must close after this response. */
  closeAfter: boolean;
  private pendingHead: string | null = null;
  private chunkedOut = false;
  private noBody = false;

  constructor(conn: Http1Connection, head: RequestHead) {
    this.conn = conn;
    this.method = head.method;
    this.url = head.target;
    this.version = head.version;
    this.rawHeaders = head.rawHeaders;
    this.bodyMode = head.bodyMode;
    this.contentLength = head.contentLength;
    this.keepAlive = head.keepAlive;
    this.bodyDone = head.bodyMode === 0;
    this.closeAfter = !head.keepAlive;
  }

  /** The request body as a stream (taken once, before the body arrives). */
  bodyStream(): Readable {
    this.readable ??= new BodyReadable(this.conn);
    if (this.bodyDone) this.readable.push(null);
    return this.readable;
  }

  /**
   * Prepares the response head; it is sent with the first body bytes (one write for small
   * responses). Framing: the given Content-Length, else chunked (HTTP/1.1) or close.
   */
  writeHead(status: number, headers: readonly string[]): void {
    if (this.headersSent) throw new Error('headers already sent');
    this.headersSent = true;
    this.status = status;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}${CRLF}`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      head += `${name}: ${headers[i + 1]!}${CRLF}`;
    }
    if (!hasLength && !this.noBody) {
      if (this.version === 11) {
        this.chunkedOut = true;
        head += `transfer-encoding: chunked${CRLF}`;
      } else {
        this.closeAfter = true; // HTTP/1.0 without length: the close delimits the body
      }
    }
    if (this.conn.draining) this.closeAfter = true;
    if (this.closeAfter) head += `connection: close${CRLF}`;
    else if (this.version === 10) head += `connection: keep-alive${CRLF}`;
    this.pendingHead = head + CRLF;
  }

  /** Writes body bytes; false = the socket buffer is full (wait for streamDrain). */
  write(chunk: Buffer): boolean {
    if (this.finished || this.closed) return true;
    const socket = this.conn.socket;
    if (this.noBody || chunk.length === 0) {
      if (this.pendingHead !== null) this.flushHead();
      return true;
    }
    socket.cork();
    if (this.pendingHead !== null) this.flushHead();
    if (this.chunkedOut) socket.write(`${chunk.length.toString(16)}${CRLF}`, 'latin1');
    const ok = socket.write(chunk);
    if (this.chunkedOut) socket.write(CRLF, 'latin1');
    socket.uncork();
    return ok;
  }

  /** Finishes the response (writing `chunk` last, if given). */
  end(chunk?: Buffer): void {
    if (this.finished || this.closed) return;
    if (!this.headersSent) this.writeHead(200, []);
    const socket = this.conn.socket;
    const head = this.pendingHead;
    if (
      head !== null &&
      !this.chunkedOut &&
      !this.noBody &&
      chunk !== undefined &&
      chunk.length > 0 &&
      chunk.length <= SINGLE_WRITE_LIMIT
    ) {
      // A whole small response (the common case: buffered by the exchange) goes out as one
      // Buffer in one write(2): no cork/writev bookkeeping, no separate string write.
      // latin1: one byte per char, as the head is written everywhere else.
      const out = Buffer.allocUnsafe(head.length + chunk.length);
      out.write(head, 0, 'latin1');
      chunk.copy(out, head.length);
      this.pendingHead = null;
      socket.write(out);
      this.finished = true;
      this.conn.responseDone(this);
      return;
    }
    socket.cork();
    if (chunk !== undefined && chunk.length > 0 && !this.noBody) this.write(chunk);
    else if (this.pendingHead !== null) this.flushHead();
    if (this.chunkedOut) socket.write(`0${CRLF}${CRLF}`, 'latin1');
    socket.uncork();
    this.finished = true;
    this.conn.responseDone(this);
  }

  /** Aborts the exchange by closing the connection (the client sees a reset). */
  destroy(): void {
    this.conn.destroy();
  }

  private flushHead(): void {
    this.conn.socket.write(this.pendingHead!, 'latin1');
    this.pendingHead = null;
  }
}
