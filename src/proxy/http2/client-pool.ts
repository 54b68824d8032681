/**
 * h2c upstream pool for one endpoint: node:http2 client sessions, each carrying up to
 * min(peer SETTINGS_MAX_CONCURRENT_STREAMS, cluster maxConcurrentStreams) streams; a new
 * session opens when all are full (up to maxConnections), else requests queue. A session
 * that served maxRequestsPerConnection streams, got GOAWAY or idled out takes no new
 * streams and closes when its last stream ends. Cluster-wide concurrency (http2MaxRequests)
 * is enforced before dispatch by the circuit breaker (upstream/cluster.ts).
 *
 * It drives undici's raw handler interface (onConnect/onHeaders/onData/onComplete/onError),
 * so the exchange's Attempt serves both pools. onConnect comes when the stream is opened on
 * a connected session: an error before it is a connect failure (UF), after it a reset (UC).
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import type { PoolSettings, UpstreamHandler, UpstreamPool, UpstreamRequest } from '../upstream/endpoint.js';
import { fromH2Raw, toH2Request } from './headers.js';
import { cancelStream } from './reset.js';
import { H2_CONNECTION_WINDOW, H2_MAX_SESSION_MEMORY, H2_SETTINGS } from './settings.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;
/** Streams assumed allowed before the peer's SETTINGS arrive (node's default too). */
const DEFAULT_PEER_STREAMS = 100;
const CALL = Symbol('isthmus.h2call');
type Tagged = ClientHttp2Stream & { [CALL]: H2Call };

/** An upstream stream reset or refused; `refused` = never processed (safe to retry). */
export class H2StreamError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
  get refused(): boolean {
    return this.code === NGHTTP2_REFUSED_STREAM;
  }
}

/** One upstream request on the pool. */
class H2Call {
  readonly req: UpstreamRequest;
  readonly handler: UpstreamHandler;
  readonly abort: (err?: Error) => void;
  readonly resume: () => void;
  session: H2Session | null = null;
  stream: ClientHttp2Stream | null = null;
  /** The handler got onComplete or onError. */
  done = false;
  cancelled = false;
  trailers: string[] | null = null;

  constructor(req: UpstreamRequest, handler: UpstreamHandler) {
    this.req = req;
    this.handler = handler;
    // Handed to undici-style handlers, which call them unbound.
    this.abort = () => this.cancel();
    this.resume = () => {
      if (this.stream !== null && !this.stream.destroyed) this.stream.resume();
    };
  }

  cancel(): void {
    this.cancelled = true;
    const s = this.stream;
    if (s === null) return; // still queued: dropped when its turn comes
    if (!(this.done && s.writableEnded)) cancelStream(s);
  }

  complete(): void {
    if (this.done) return;
    this.done = true;
    this.handler.onComplete(this.trailers);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onError(err);
  }
}

class H2Session {
  readonly pool: H2Pool;
  readonly session: ClientHttp2Session;
  connected = false;
  /** Takes no new streams (GOAWAY, request quota reached, closing). */
  draining = false;
  /** Streams assigned and not yet closed (including ones waiting for the connection). */
  active = 0;
  /** Streams ever assigned (for maxRequestsPerConnection). */
  assigned = 0;
  waiting: H2Call[] = [];
  private connectTimer: NodeJS.Timeout | null;

  constructor(pool: H2Pool) {
    this.pool = pool;
    const { host, port } = pool;
    this.session = http2.connect(`http://${pool.authority}`, {
      settings: { enablePush: false, initialWindowSize: H2_SETTINGS.initialWindowSize },
      maxSessionMemory: H2_MAX_SESSION_MEMORY,
      peerMaxConcurrentStreams: DEFAULT_PEER_STREAMS,
      createConnection: () =>
        pool.settings.transport?.connect(host, port, 'h2') ?? net.connect({ host, port, noDelay: true }),
    });
    this.connectTimer = setTimeout(() => {
      this.session.destroy(new Error(`connect timeout after ${pool.settings.connectTimeoutMs} ms`));
    }, pool.settings.connectTimeoutMs);
    const s = this.session;
    s.on('connect', () => this.onConnect());
    s.on('remoteSettings', () => this.pool.drainQueue());
    s.on('goaway', () => {
      this.draining = true;
    });
    s.on('error', noop);
    s.on('close', () => this.onClose());
    s.setTimeout(pool.settings.idleTimeoutMs, () => {
      if (this.active === 0) this.close();
    });
  }

  capacity(): number {
    const peer = this.connected
      ? (this.session.remoteSettings.maxConcurrentStreams ?? DEFAULT_PEER_STREAMS)
      : DEFAULT_PEER_STREAMS;
    const own = this.pool.settings.maxConcurrentStreams ?? 0;
    return own > 0 ? Math.min(own, peer) : peer;
  }

  canTake(): boolean {
    if (this.draining || this.session.destroyed || this.session.closed) return false;
    return this.active < this.capacity();
  }

  take(call: H2Call): void {
    this.active++;
    this.assigned++;
    const quota = this.pool.settings.maxRequestsPerConnection;
    if (quota > 0 && this.assigned >= quota) this.draining = true;
    call.session = this;
    if (this.connected) this.start(call);
    else this.waiting.push(call);
  }

  private onConnect(): void {
    this.connected = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    try {
      this.session.setLocalWindowSize(H2_CONNECTION_WINDOW);
    } catch {
      // an older peer or a closing session: keep the default window
    }
    const waiting = this.waiting;
    this.waiting = [];
    for (const call of waiting) this.start(call);
  }

  private start(call: H2Call): void {
    if (call.cancelled) {
      this.streamDone();
      call.fail(new Error('request cancelled before it was sent'));
      return;
    }
    const req = call.req;
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(toH2Request(req.method, req.path, req.headers), {
        endStream: req.body === null,
      });
    } catch (err) {
      this.streamDone();
      // Unknown to the peer: as good as a connect failure for the exchange.
      call.fail(err as Error);
      return;
    }
    call.stream = stream;
    (stream as Tagged)[CALL] = call;
    stream.on('response', onResponse);
    stream.on('data', onData);
    stream.on('trailers', onTrailers);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    call.handler.onConnect(call.abort);
    const body = req.body;
    if (body === null || stream.destroyed) return;
    if (Buffer.isBuffer(body)) stream.end(body);
    else body.pipe(stream);
  }

  /** A stream of this session ended (or never started). */
  streamDone(): void {
    this.active--;
    if (this.draining && this.active === 0) this.close();
    this.pool.drainQueue();
  }

  close(): void {
    this.draining = true;
    if (!this.session.closed && !this.session.destroyed) this.session.close();
  }

  private onClose(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.draining = true;
    this.pool.sessionClosed(this);
    const waiting = this.waiting;
    this.waiting = [];
    for (const call of waiting) {
      this.active--;
      call.fail(new Error(`upstream connection to ${this.pool.authority} failed`));
    }
    this.pool.drainQueue();
  }
}

export class H2Pool implements UpstreamPool {
  readonly host: string;
  readonly port: number;
  readonly authority: string;
  readonly settings: PoolSettings;
  private sessions: H2Session[] = [];
  private queue: H2Call[] = [];
  private queueHead = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private closedResolve: (() => void) | null = null;

  constructor(host: string, port: number, settings: PoolSettings) {
    this.host = host;
    this.port = port;
    this.authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.settings = settings;
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): boolean {
    const call = new H2Call(req, handler);
    if (this.closed) {
      call.fail(new Error('upstream pool closed'));
      return false;
    }
    if (this.queueHead === this.queue.length && this.assign(call)) return true;
    this.queue.push(call);
    return true;
  }

  /** Sessions open (for tests and /clusters). */
  get connections(): number {
    return this.sessions.length;
  }

  private assign(call: H2Call): boolean {
    let target: H2Session | undefined;
    for (const s of this.sessions) {
      if (s.canTake()) {
        target = s;
        break;
      }
    }
    if (target === undefined) {
      if (this.sessions.length >= (this.settings.connections ?? Number.POSITIVE_INFINITY)) return false;
      target = new H2Session(this);
      this.sessions.push(target);
    }
    target.take(call);
    return true;
  }

  drainQueue(): void {
    while (this.queueHead < this.queue.length) {
      const call = this.queue[this.queueHead]!;
      if (call.cancelled) {
        call.fail(new Error('request cancelled before it was sent'));
      } else if (this.closed) {
        call.fail(new Error('upstream pool closed'));
      } else if (!this.assign(call)) {
        break;
      }
      this.queue[this.queueHead++] = undefined as unknown as H2Call;
    }
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    }
  }

  sessionClosed(s: H2Session): void {
    const i = this.sessions.indexOf(s);
    if (i >= 0) this.sessions.splice(i, 1);
    if (this.closed && this.sessions.length === 0) this.closedResolve?.();
  }

  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.drainQueue();
    this.closing = new Promise<void>((resolve) => {
      this.closedResolve = resolve;
    });
    if (this.sessions.length === 0) this.closedResolve?.();
    for (const s of [...this.sessions]) s.close();
    return this.closing;
  }

  destroy(): Promise<void> {
    const p = this.close();
    for (const s of [...this.sessions]) s.session.destroy();
    return p;
  }
}

/** `auto` clusters: HTTP/2 downstream requests go out as h2c, HTTP/1.1 ones as HTTP/1.1. */
export class AutoPool implements UpstreamPool {
  constructor(
    readonly h1: UpstreamPool,
    readonly h2: UpstreamPool,
  ) {}

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): boolean {
    return (req.h2 === true ? this.h2 : this.h1).dispatch(req, handler);
  }

  async close(): Promise<void> {
    await Promise.all([this.h1.close(), this.h2.close()]);
  }

  async destroy(): Promise<void> {
    await Promise.all([this.h1.destroy(), this.h2.destroy()]);
  }
}

function onResponse(this: Tagged, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
  const call = this[CALL];
  if (call.done) return;
  const status = Number(headers[':status']);
  const ok = call.handler.onHeaders(status, fromH2Raw(raw), call.resume);
  if (!ok) this.pause();
  // Trailers-only response (gRPC errors): complete now, in the same tick as the headers, so
  // the downstream sees headers + end together and answers with a single HEADERS frame.
  if ((flags & NGHTTP2_FLAG_END_STREAM) !== 0) call.complete();
}

function onData(this: Tagged, chunk: Buffer): void {
  const call = this[CALL];
  if (call.done) return;
  if (!call.handler.onData(chunk)) this.pause();
}

function onTrailers(this: Tagged, _headers: IncomingHttpHeaders, _flags: number, raw: string[]): void {
  this[CALL].trailers = fromH2Raw(raw);
}

function onEnd(this: Tagged): void {
  const call = this[CALL];
  // A reset stream may still end its readable side: only a clean end completes.
  if (call.cancelled || (this.rstCode ?? 0) !== 0) return;
  call.complete();
}

function onError(this: Tagged, err: Error): void {
  const call = this[CALL];
  const code = this.rstCode ?? 0;
  call.fail(code !== 0 ? new H2StreamError(`upstream stream reset: ${err.message}`, code) : err);
}

function onClose(this: Tagged): void {
  const call = this[CALL];
  if (!call.done) {
    const code = this.rstCode ?? 0;
    call.fail(new H2StreamError(`upstream stream closed before the response ended (code ${code})`, code));
  }
  const body = call.req.body;
  if (body !== null && !Buffer.isBuffer(body)) body.unpipe(this);
  call.session?.streamDone();
}

function noop(): void {}
