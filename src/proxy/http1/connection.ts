/**
 * One downstream HTTP/1.1 connection: reads heads and bodies, hands each request to the
 * handler as an Http1Stream, and serializes responses (pipelined requests wait in the buffer
 * until the previous response is done). Protects itself: head size and count limits (431),
 * a head deadline against slowloris (408), strict framing (400/501), idle timeout.
 */
import type { Socket } from 'node:net';
import { ChunkedDecoder } from './chunked.js';
import { BodyMode, HeadError, parseHead } from './head.js';
import { Http1Stream } from './stream.js';

export interface Http1Limits {
  maxHeaderBytes: number;
  maxHeaders: number;
  /** A request head must complete within this time from its first byte. */
  headersTimeoutMs: number;
  /** Close a connection idle (between requests) this long. */
  idleTimeoutMs: number;
}

export type StreamHandler = (stream: Http1Stream) => void;

const HEAD = 0;
const BODY = 1;
const WAIT = 2;
const CLOSED = 3;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

export class Http1Connection {
  readonly socket: Socket;
  draining = false;
  private readonly limits: Http1Limits;
  private readonly handler: StreamHandler;
  private readonly onEnd: (c: Http1Connection) => void;
  private buf: Buffer | null = null;
  private state = HEAD;
  private current: Http1Stream | null = null;
  private bodyRemaining = 0;
  private decoder: ChunkedDecoder | null = null;
  private headStart = 0;
  private processing = false;
  private pausedForBody = false;
  private headTimer = false;

  constructor(
    socket: Socket,
    limits: Http1Limits,
    handler: StreamHandler,
    onEnd: (c: Http1Connection) => void,
  ) {
    this.socket = socket;
    this.limits = limits;
    this.handler = handler;
    this.onEnd = onEnd;
    // Per-connection closures are fine: they are made once per connection, not per request.
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => this.current?.owner?.streamDrain());
    socket.on('close', () => this.onClose());
    socket.on('error', () => {});
    socket.setTimeout(limits.idleTimeoutMs);
    socket.on('timeout', () => this.onIdle());
  }

  /** True when no request is in progress (safe to close now). */
  get idle(): boolean {
    return this.state === HEAD && this.current === null && this.buf === null;
  }

  destroy(): void {
    this.state = CLOSED;
    this.socket.destroy();
  }

  resumeBody(): void {
    if (this.pausedForBody) {
      this.pausedForBody = false;
      this.socket.resume();
    }
  }

  /**
   * Hands the socket over (HTTP/1.1 Upgrade, see tcp/upgrade.ts): stops parsing, removes this
   * connection's listeners and returns the bytes already read past the request head.
   */
  detach(): Buffer | null {
    const rest = this.buf;
    this.buf = null;
    this.state = CLOSED;
    this.current = null;
    const s = this.socket;
    for (const event of ['data', 'drain', 'close', 'timeout'] as const) s.removeAllListeners(event);
    s.setTimeout(0);
    this.onEnd(this);
    return rest;
  }

  /** Called by the stream when its response is complete. */
  responseDone(stream: Http1Stream): void {
    if (stream !== this.current) return;
    if (stream.closeAfter) {
      this.state = CLOSED;
      this.socket.end();
      return;
    }
    if (this.state === WAIT) this.nextRequest();
  }

  private nextRequest(): void {
    this.current = null;
    this.state = HEAD;
    this.headStart = 0;
    if (this.socket.isPaused() && !this.pausedForBody) this.socket.resume();
    if (this.draining && this.buf === null) {
      this.destroy();
      return;
    }
    if (!this.processing && this.buf !== null) this.process();
  }

  private onData(chunk: Buffer): void {
    if (this.state === CLOSED) return;
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.processing) this.process();
  }

  private process(): void {
    this.processing = true;
    try {
      while (this.buf !== null && this.state !== CLOSED) {
        if (this.state === HEAD) {
          if (!this.readHead()) break;
        } else if (this.state === BODY) {
          this.readBody();
        } else {
          // WAIT: the next pipelined request waits for the current response.
          if (this.buf.length > this.limits.maxHeaderBytes * 4) this.socket.pause();
          break;
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /** Returns false when more bytes are needed. */
  private readHead(): boolean {
    let buf = this.buf!;
    // RFC 9112 2.2: ignore empty lines before a request line.
    let start = 0;
    while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
    const end = buf.indexOf(CRLFCRLF, start);
    if (end === -1) {
      // The head deadline runs from the first read that did not complete it (a head that
      // arrives whole, the common case, costs no clock read).
      if (this.headStart === 0) this.headStart = performance.now();
      if (buf.length - start > this.limits.maxHeaderBytes) this.fail(431, 'request header fields too large');
      else if (performance.now() - this.headStart > this.limits.headersTimeoutMs)
        this.fail(408, 'request timeout');
      else if (!this.headTimer) {
        // A head split over packets (rare): bound the wait by the head deadline, not idle time.
        this.headTimer = true;
        this.socket.setTimeout(this.limits.headersTimeoutMs);
      }
      return false;
    }
    if (this.headTimer) {
      this.headTimer = false;
      this.socket.setTimeout(this.limits.idleTimeoutMs);
    }
    if (end - start > this.limits.maxHeaderBytes) {
      this.fail(431, 'request header fields too large');
      return false;
    }
    const parsed = parseHead(buf.toString('latin1', start, end), this.limits);
    const rest = end + 4;
    buf = rest < buf.length ? buf.subarray(rest) : (null as unknown as Buffer);
    this.buf = buf;
    if (parsed instanceof HeadError) {
      this.fail(parsed.status, parsed.reason);
      return false;
    }
    if (parsed.method === 'CONNECT') {
      this.fail(405, 'CONNECT is not supported');
      return false;
    }
    const stream = new Http1Stream(this, parsed);
    this.current = stream;
    if (parsed.bodyMode === BodyMode.Length) {
      this.bodyRemaining = parsed.contentLength;
      this.state = BODY;
    } else if (parsed.bodyMode === BodyMode.Chunked) {
      this.decoder = new ChunkedDecoder();
      this.state = BODY;
    } else {
      this.state = WAIT;
    }
    if (parsed.expectContinue && parsed.bodyMode !== BodyMode.None) this.socket.write(CONTINUE, 'latin1');
    this.handler(stream);
    if (this.state === WAIT && stream.finished) this.nextRequest();
    return true;
  }

  private readBody(): void {
    const stream = this.current!;
    const buf = this.buf!;
    if (this.decoder === null) {
      const take = Math.min(this.bodyRemaining, buf.length);
      this.buf = take < buf.length ? buf.subarray(take) : null;
      this.bodyRemaining -= take;
      this.deliver(stream, take === buf.length ? buf : buf.subarray(0, take));
      if (this.bodyRemaining === 0) this.bodyComplete(stream);
      return;
    }
    const used = this.decoder.feed(buf, 0, this);
    if (used < 0) {
      // Framing broken mid-body: nothing after this point can be trusted.
      stream.readable?.destroy(new Error(`bad chunked body: ${this.decoder.error}`));
      if (!stream.headersSent) this.fail(400, 'bad chunked encoding');
      else this.destroy();
      return;
    }
    this.buf = used < buf.length ? buf.subarray(used) : null;
    if (this.decoder.done) {
      this.decoder = null;
      this.bodyComplete(stream);
    }
  }

  /** ChunkSink: decoded chunk data. */
  chunkData(data: Buffer): void {
    this.deliver(this.current!, data);
  }

  private deliver(stream: Http1Stream, data: Buffer): void {
    if (data.length === 0) return;
    stream.bodyBytes += data.length;
    if (stream.readable !== null) {
      if (!stream.readable.push(data) && !this.pausedForBody) {
        this.pausedForBody = true;
        this.socket.pause();
      }
    } else if (stream.owner !== null) {
      stream.owner.streamData(data);
    }
  }

  private bodyComplete(stream: Http1Stream): void {
    stream.bodyDone = true;
    if (stream.readable !== null) stream.readable.push(null);
    else stream.owner?.streamEnd();
    if (stream.finished) this.nextRequest();
    else this.state = WAIT;
  }

  /** Answers a protocol error (if no response started) and closes the connection. */
  private fail(status: number, reason: string): void {
    const cur = this.current;
    if (cur === null || !cur.headersSent) {
      const body = `${reason}\n`;
      this.socket.write(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        'latin1',
      );
    }
    this.state = CLOSED;
    this.buf = null;
    this.socket.end();
    if (cur !== null && !cur.finished) {
      cur.closed = true;
      cur.owner?.streamClosed();
    }
  }

  private onIdle(): void {
    if (this.state === HEAD && this.current === null) {
      if (this.buf === null) this.destroy();
      else this.fail(408, 'request timeout');
    }
  }

  private onClose(): void {
    this.state = CLOSED;
    const cur = this.current;
    this.current = null;
    if (cur !== null && !cur.finished) {
      cur.closed = true;
      if (cur.readable !== null && !cur.bodyDone) cur.readable.destroy(new Error('client disconnected'));
      cur.owner?.streamClosed();
    }
    this.onEnd(this);
  }
}
