/**
 * One downstream HTTP/2 stream adapted to the Downstream surface (http/downstream.ts) the
 * HTTP/1 path uses, so handler.ts and exchange.ts serve both protocols.
 *
 * Response head: writeHead only records it; it goes out with the first body bytes, at end()
 * (so `writeHead + end()` with no body is one HEADERS frame with END_STREAM: the gRPC
 * trailers-only form), or on the next tick for a streamed response whose body is late.
 * Request body: delivered to the owner (buffered bodies) or through bodyStream() (streamed,
 * with backpressure), which keeps a copy up to a limit so a retry can replay it.
 *
 * Stream events are module functions with the adapter on a symbol property: no closures
 * per request.
 */
import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';
import type { Downstream, StreamOwner } from '../http/downstream.js';
import { BodyMode } from '../http1/head.js';
import { isGrpcContentType } from './grpc.js';
import { type H2RequestHead, toH2Response, toH2Trailers } from './headers.js';
import { resetStream } from './reset.js';

const ADAPTER = Symbol('isthmus.h2downstream');
type Tagged = ServerHttp2Stream & { [ADAPTER]: H2Downstream };

/** Bytes of a streamed request body kept for replay (Envoy's per-request buffer limit). */
export const REPLAY_LIMIT = 64 * 1024;

/** Streamed request body: pulls from the HTTP/2 stream, remembers up to REPLAY_LIMIT bytes. */
export class H2Body extends Readable {
  readonly ds: H2Downstream;
  private kept: Buffer[] | null = [];
  private keptBytes = 0;
  private complete = false;

  constructor(ds: H2Downstream) {
    super();
    this.ds = ds;
  }

  override _read(): void {
    const s = this.ds.stream;
    if (s.isPaused()) s.resume();
  }

  feed(chunk: Buffer): boolean {
    if (this.kept !== null) {
      this.keptBytes += chunk.length;
      if (this.keptBytes <= REPLAY_LIMIT) this.kept.push(chunk);
      else this.kept = null;
    }
    return this.push(chunk);
  }

  finish(): void {
    this.complete = true;
    this.push(null);
  }

  /** The whole body when it has ended within the limit, else null (not replayable). */
  replay(): Buffer | null {
    if (!this.complete || this.kept === null) return null;
    return this.kept.length === 1 ? this.kept[0]! : Buffer.concat(this.kept);
  }
}

export class H2Downstream implements Downstream {
  readonly stream: ServerHttp2Stream;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly bodyMode: number;
  readonly contentLength: number;
  readonly grpc: boolean;
  readonly h2 = true;
  /** Trailers are expected (gRPC, or the client sent te: trailers): the response keeps its
   * stream open after the last DATA frame so they can follow. */
  readonly wantsTrailers: boolean;
  owner: StreamOwner | null = null;
  readable: H2Body | null = null;
  bodyBytes = 0;
  bodyDone: boolean;
  headersSent = false;
  finished = false;
  closed = false;
  status = 0;
  /** Response head recorded by writeHead, not yet sent. */
  head: OutgoingHttpHeaders | null = null;
  private noBody = false;
  private drainHooked = false;
  private readonly readsBody: boolean;
  private trailers: OutgoingHttpHeaders | null = null;

  constructor(stream: ServerHttp2Stream, head: H2RequestHead, endStream: boolean) {
    this.stream = stream;
    this.method = head.method;
    this.url = head.path;
    this.rawHeaders = head.headers;
    this.contentLength = head.contentLength;
    this.bodyDone = endStream;
    this.bodyMode = endStream ? BodyMode.None : head.contentLength >= 0 ? BodyMode.Length : BodyMode.Chunked;
    this.grpc = isGrpcContentType(head.contentType);
    this.wantsTrailers = this.grpc || head.trailers;
    (stream as Tagged)[ADAPTER] = this;
    stream.on('close', onClose);
    stream.on('error', onError);
    // A request without a body is never read: node drains such streams itself, and not
    // reading lets `end(chunk)` finish without node's destroyed-stream error on every response.
    this.readsBody = !endStream;
    if (!endStream) {
      stream.on('data', onData);
      stream.on('end', onEnd);
    }
  }

  bodyStream(): Readable {
    if (this.readable === null) {
      this.readable = new H2Body(this);
      if (this.bodyDone) this.readable.finish();
    }
    return this.readable;
  }

  writeHead(status: number, headers: readonly string[]): void {
    if (this.headersSent) throw new Error('headers already sent');
    // Build now: invalid values throw here, where the exchange can still answer 502.
    const head = toH2Response(status, headers);
    this.headersSent = true;
    this.status = status;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    this.head = head;
    process.nextTick(flushHead, this);
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.closed) return true;
    if (this.head !== null) this.respond(false);
    if (this.noBody || chunk.length === 0 || this.stream.destroyed) return true;
    if (this.stream.write(chunk)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.stream.on('drain', onDrain);
    }
    return false;
  }

  end(chunk?: Buffer, trailers?: readonly string[] | null): void {
    if (this.finished || this.closed) return;
    if (!this.headersSent) this.writeHead(200, []);
    this.finished = true;
    const hasTrailers = trailers !== undefined && trailers !== null && trailers.length > 0;
    const hasData = chunk !== undefined && chunk.length > 0 && !this.noBody;
    if (hasTrailers) this.trailers = toH2Trailers(trailers);
    if (this.head !== null) {
      // Nothing sent yet: a body-less, trailer-less response is a single HEADERS frame.
      if (!hasData && !hasTrailers) {
        this.respondEnd();
        return;
      }
      this.respond(hasTrailers);
    }
    if (this.stream.destroyed || this.stream.closed) return;
    if (!hasData) this.stream.end();
    else if (!this.readsBody) this.stream.end(chunk);
    else {
      // The request side was read: end(chunk) would complete after node destroyed the stream
      // (ERR_STREAM_DESTROYED built per response); a write then an empty end does not.
      this.stream.write(chunk);
      this.stream.end();
    }
  }

  destroy(): void {
    this.finished = true;
    this.head = null;
    resetStream(this.stream);
  }

  /** Sends the recorded head (stream stays open for DATA and maybe trailers). */
  respond(forceTrailers: boolean): void {
    const head = this.head!;
    this.head = null;
    if (this.stream.destroyed || this.stream.closed) return;
    if (this.noBody) {
      this.stream.respond(head, { endStream: true });
      return;
    }
    const waitForTrailers = forceTrailers || this.wantsTrailers;
    if (waitForTrailers) this.stream.on('wantTrailers', onWantTrailers);
    this.stream.respond(head, { waitForTrailers });
  }

  private respondEnd(): void {
    const head = this.head!;
    this.head = null;
    if (!this.stream.destroyed && !this.stream.closed) this.stream.respond(head, { endStream: true });
  }

  /** 'wantTrailers': the last DATA frame went out. */
  sendTrailers(): void {
    const t = this.trailers ?? Object.create(null);
    this.trailers = null;
    if (!this.stream.destroyed) this.stream.sendTrailers(t);
  }

  deliver(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
    const r = this.readable;
    if (r !== null) {
      if (!r.feed(chunk)) this.stream.pause();
    } else if (this.owner !== null) {
      this.owner.streamData(chunk);
    }
    // Else nobody wants the body (local reply): drop it; flow control keeps moving.
  }

  bodyEnded(): void {
    this.bodyDone = true;
    if (this.readable !== null) this.readable.finish();
    else this.owner?.streamEnd();
  }

  streamGone(): void {
    if (this.finished && this.head === null) return;
    this.closed = true;
    this.head = null;
    if (this.readable !== null && !this.bodyDone) this.readable.destroy(new Error('client reset the stream'));
    if (!this.finished) this.owner?.streamClosed();
  }
}

function flushHead(ds: H2Downstream): void {
  if (ds.finished || ds.closed || ds.stream.destroyed) return;
  try {
    if (ds.head !== null) ds.respond(false);
  } catch {
    ds.destroy();
  }
}

function onData(this: Tagged, chunk: Buffer): void {
  this[ADAPTER].deliver(chunk);
}
function onEnd(this: Tagged): void {
  this[ADAPTER].bodyEnded();
}
function onDrain(this: Tagged): void {
  this[ADAPTER].owner?.streamDrain();
}
function onClose(this: Tagged): void {
  this[ADAPTER].streamGone();
}
function onError(): void {
  // 'close' follows; the adapter handles the reset there.
}
function onWantTrailers(this: Tagged): void {
  this[ADAPTER].sendTrailers();
}
