/**
 * One proxied request on a forward route: circuit breaking, endpoint choice, tries with
 * per-try and route timeouts, retries with jittered backoff, and writing the response.
 * All state lives in fields set in the constructor (stable shape); timers get `this` as an
 * argument instead of closures.
 *
 * Small responses with a Content-Length are buffered and written with a single
 * writeHead+end (one syscall, no chunked encoding); larger or unsized ones are streamed
 * with backpressure. Request bodies are buffered up to BODY_BUFFER_LIMIT so they can be
 * retried and mirrored; larger/unsized bodies are streamed and never retried.
 */
import type { Readable } from 'node:stream';
import { Body, Flag } from '../flags.js';
import type { StreamOwner } from '../http1/stream.js';
import { GrpcStatus, grpcStatusOf, retriableGrpc } from '../http2/grpc.js';
import type { CompiledForward, CompiledRoute, Target } from '../router/compiled.js';
import { Protocol } from '../telemetry/istio-metrics.js';
import { peerOfStream } from '../tls/peer.js';
import type { ClusterState, SlotWaiter } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';
import { Attempt, type AttemptOwner, type RawHeaders } from './attempt.js';
import type { Downstream } from './downstream.js';
import { onBackoffDone, onDelayDone, onRouteTimeout, onTryTimeout, roll } from './exchange-events.js';
import { appendCorsHeaders, localGrpcStatus, writeLocal } from './local-reply.js';
import type { RequestRecorder } from './recorder.js';
import { backoffMs, FailureKind, retriableFailure, retriableStatus } from './retry.js';
import { copyResponseHeaders, copyTrailers, sendMirrors } from './upstream-io.js';

export const RESPONSE_BUFFER_LIMIT = 64 * 1024;

class ProxyTimeout extends Error {
  constructor(readonly perTry: boolean) {
    super(perTry ? 'per-try timeout' : 'route timeout');
  }
}
const DOWNSTREAM_GONE = new Error('downstream closed');

/** A streamed request body that kept a copy of itself (HTTP/2 downstream), for retries. */
interface ReplayableBody {
  replay(): Buffer | null;
}

export class Exchange implements AttemptOwner, SlotWaiter, StreamOwner {
  readonly res: Downstream;
  readonly route: CompiledRoute;
  readonly fwd: CompiledForward;
  readonly target: Target;
  readonly cluster: ClusterState;
  readonly recorder: RequestRecorder;
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  readonly corsOrigin: string | null;
  readonly startMs: number;
  /** gRPC request: gRPC local replies, gRPC retry conditions, grpc_response_status. */
  readonly grpc: boolean;
  grpcStatus = -1;
  endpoint: EndpointState | null = null;
  /** Hosts of the earlier tries (allocated on the first retry only). */
  private triedHosts: EndpointState[] | null = null;
  body: Buffer | Readable | null;
  replayable: boolean;
  flags: number;
  tries = 0;
  attempt: Attempt | null = null;
  done = false;
  waitCancelled = false;
  responseStarted = false;
  routeTimer: NodeJS.Timeout | null = null;
  tryTimer: NodeJS.Timeout | null = null;
  backoffTimer: NodeJS.Timeout | null = null;
  status = 0;
  respHeaders: string[] | null = null;
  respChunks: Buffer[] | null = null;
  respBytes = 0;
  bodyPending = false;
  delayPending = false;
  bodyChunks: Buffer[] | null = null;
  /** Set-Cookie of a generated consistent-hash cookie (upstream/hash.ts), added to the response. */
  setCookie: string | null = null;

  constructor(
    res: Downstream,
    route: CompiledRoute,
    target: Target,
    recorder: RequestRecorder,
    path: string,
    headers: string[],
    body: Buffer | Readable | null,
    corsOrigin: string | null,
    flags: number,
    startMs: number,
  ) {
    this.res = res;
    this.route = route;
    this.fwd = route.forward!;
    this.target = target;
    this.cluster = target.cluster;
    this.recorder = recorder;
    this.method = res.method;
    this.path = path;
    this.headers = headers;
    this.body = body;
    this.replayable = !(body !== null && !Buffer.isBuffer(body));
    this.corsOrigin = corsOrigin;
    this.flags = flags;
    this.startMs = startMs;
    this.grpc = res.grpc === true;
    res.owner = this;
  }

  /**
   * Waits for what must come first (the buffered request body, an injected delay), then
   * proceeds. Envoy order: fault delay, fault abort, then the router.
   */
  start(bufferBody: boolean): void {
    const f = this.route.fault;
    if (bufferBody && !this.res.bodyDone) {
      // The connection delivers the body through streamData/streamEnd.
      this.bodyPending = true;
      this.bodyChunks = [];
    }
    if (f !== null && f.delayPct > 0 && roll(f.delayPct)) {
      this.flags |= Flag.DI;
      this.delayPending = true;
      this.routeTimer = setTimeout(onDelayDone, f.delayMs, this);
    }
    if (!this.bodyPending && !this.delayPending) this.proceed();
  }

  streamData(chunk: Buffer): void {
    this.bodyChunks?.push(chunk);
  }

  streamEnd(): void {
    if (!this.bodyPending) return;
    const chunks = this.bodyChunks ?? [];
    this.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.bodyChunks = null;
    this.bodyPending = false;
    if (!this.delayPending && !this.done) this.proceed();
  }

  delayDone(): void {
    this.routeTimer = null;
    this.delayPending = false;
    if (!this.bodyPending && !this.done) this.proceed();
  }

  private proceed(): void {
    const f = this.route.fault;
    if (f !== null && f.abortPct > 0 && roll(f.abortPct)) {
      this.flags |= Flag.FI;
      this.local(f.abortStatus, Body.faultAbort, null, f.abortGrpc);
      return;
    }
    if (this.fwd.mirrors.length > 0 && this.replayable) {
      sendMirrors(this.fwd.mirrors, this.method, this.path, this.headers, this.body as Buffer | null);
    }
    if (this.fwd.timeoutMs > 0) this.routeTimer = setTimeout(onRouteTimeout, this.fwd.timeoutMs, this);
    this.next();
  }

  /** Takes a circuit-breaker slot, then sends; or queues; or answers 503 UO. */
  private next(): void {
    switch (this.cluster.acquire(this)) {
      case 'go':
        this.send();
        return;
      case 'queued':
        return;
      default:
        this.flags |= Flag.UO;
        this.local(503, Body.overflow, ['x-envoy-overloaded', 'true']);
    }
  }

  onSlot(): void {
    if (this.done) {
      this.cluster.release();
      return;
    }
    this.send();
  }

  private send(): void {
    let endpoint = this.cluster.pick(this);
    // Istio's default retry host predicate (previous_hosts, host_selection_retry_max_attempts 5):
    // a retry avoids every host an earlier try went to whenever the balancer offers another one.
    if (this.tries > 0 && this.endpoint !== null) {
      if (this.triedHosts === null) this.triedHosts = [this.endpoint];
      else this.triedHosts.push(this.endpoint);
      for (let i = 0; i < 5 && endpoint !== undefined && this.triedHosts.includes(endpoint); i++)
        endpoint = this.cluster.pick(this);
    }
    if (endpoint === undefined) {
      this.cluster.release();
      this.cluster.stats.rqNoHealthy++;
      this.flags |= Flag.UH;
      this.local(503, Body.noHealthyUpstream, null);
      return;
    }
    const isRetry = this.tries > 0;
    this.tries++;
    if (isRetry) this.cluster.retriesActive++;
    const a = new Attempt(this, endpoint, isRetry);
    this.endpoint = endpoint;
    this.attempt = a;
    endpoint.active++;
    endpoint.total++;
    this.cluster.stats.rqTotal++;
    const retry = this.fwd.retry;
    if (retry !== null && retry.perTryTimeoutMs > 0) {
      this.tryTimer = setTimeout(onTryTimeout, retry.perTryTimeoutMs, a);
    }
    endpoint.pool.dispatch(
      {
        path: this.path,
        method: this.method,
        headers: this.headers,
        body: this.body,
        h2: this.res.h2 === true,
      },
      a,
    );
  }

  /** Bookkeeping common to every end of a try. Returns false for stale tries. */
  private endAttempt(a: Attempt): boolean {
    a.endpoint.active--;
    if (a.isRetry) this.cluster.retriesActive--;
    this.cluster.release();
    if (this.attempt !== a) return false;
    this.attempt = null;
    if (this.tryTimer !== null) {
      clearTimeout(this.tryTimer);
      this.tryTimer = null;
    }
    return !this.done;
  }

  private canRetry(): boolean {
    const r = this.fwd.retry;
    if (r === null || this.tries > r.attempts || this.done) return false;
    if (!this.replayable && !this.replayBody()) return false;
    if (this.cluster.retriesActive >= this.cluster.maxRetries) {
      this.cluster.stats.rqRetryOverflow++;
      return false;
    }
    return true;
  }

  /** A streamed body that completed within the buffer limit becomes a replayable Buffer. */
  private replayBody(): boolean {
    const b = this.body as unknown as Partial<ReplayableBody> | null;
    const buf = b !== null && typeof b.replay === 'function' ? b.replay() : null;
    if (buf === null) return false;
    this.body = buf.length > 0 ? buf : null;
    this.replayable = true;
    return true;
  }

  private scheduleRetry(): void {
    this.cluster.stats.rqRetry++;
    const delay = backoffMs(this.fwd.retry!, this.tries);
    this.backoffTimer = setTimeout(onBackoffDone, delay, this);
  }

  retryNow(): void {
    this.backoffTimer = null;
    if (!this.done) this.next();
  }

  attemptHeaders(a: Attempt, status: number, raw: RawHeaders, resume: () => void): boolean {
    if (status >= 200) this.cluster.reportStatus(a.endpoint, status);
    if (status < 200 || this.done || a !== this.attempt) return true;
    const r = this.fwd.retry;
    // gRPC: a trailers-only reply carries grpc-status in the headers (Envoy reads it there).
    const gs = this.grpc ? grpcStatusOf(raw) : -1;
    if (r !== null && (retriableStatus(r, status) || (gs > 0 && retriableGrpc(r, gs)))) {
      if (this.canRetry()) {
        a.discard = true;
        return true;
      }
      if (this.tries > r.attempts) this.flags |= Flag.URX;
    }
    this.status = status;
    this.grpcStatus = gs;
    const headers: string[] = [];
    const contentLength = copyResponseHeaders(raw, headers);
    if (this.setCookie !== null) headers.push('set-cookie', this.setCookie);
    this.target.responseOps.apply(headers);
    for (const plan of this.route.responseOps) plan.apply(headers);
    if (this.corsOrigin !== null && this.route.cors !== null)
      appendCorsHeaders(this.route.cors, this.corsOrigin, headers);
    const noBody = this.method === 'HEAD' || status === 204 || status === 304;
    if (noBody || (contentLength >= 0 && contentLength <= RESPONSE_BUFFER_LIMIT)) {
      this.respHeaders = headers;
      this.respChunks = [];
      return true;
    }
    this.responseStarted = true;
    a.resume = resume;
    this.res.writeHead(status, headers);
    return true;
  }

  attemptData(a: Attempt, chunk: Buffer): boolean {
    if (this.done || a !== this.attempt) return true;
    this.respBytes += chunk.length;
    if (this.respChunks !== null) {
      this.respChunks.push(chunk);
      return true;
    }
    return this.res.write(chunk);
  }

  attemptComplete(a: Attempt, rawTrailers: RawHeaders | null): void {
    if (!this.endAttempt(a)) return;
    if (a.discard) {
      this.scheduleRetry();
      return;
    }
    const trailers = copyTrailers(rawTrailers);
    if (this.grpc && trailers !== null) {
      const gs = grpcStatusOf(trailers);
      if (gs >= 0) this.grpcStatus = gs;
    }
    const chunks = this.respChunks;
    try {
      if (chunks !== null) {
        this.res.writeHead(this.status, this.respHeaders!);
        this.res.end(
          chunks.length === 1 ? chunks[0] : chunks.length === 0 ? undefined : Buffer.concat(chunks),
          trailers,
        );
      } else {
        this.res.end(undefined, trailers);
      }
    } catch (err) {
      // E.g. a header value node refuses to send: answer like Envoy does for a bad upstream.
      this.recorder.debugError(err as Error);
      this.local(502, 'upstream response invalid', null);
      return;
    }
    this.finish(this.status);
  }

  attemptError(a: Attempt, err: Error): void {
    a.endpoint.errors++;
    if (!a.cancelled || a.timedOut) this.cluster.reportFailure(a.endpoint, a.timedOut);
    if (!this.endAttempt(a)) return;
    const kind = a.timedOut
      ? FailureKind.PerTryTimeout
      : a.connected
        ? (err as { refused?: boolean }).refused === true
          ? FailureKind.RefusedStream
          : FailureKind.Reset
        : FailureKind.ConnectFailure;
    if (kind === FailureKind.ConnectFailure) this.cluster.stats.cxConnectFail++;
    else if (kind !== FailureKind.PerTryTimeout) this.cluster.stats.rqReset++;
    this.recorder.debugError(err);
    if (this.responseStarted) {
      // Headers already went downstream: the only honest signal left is a reset.
      this.flags |= kind === FailureKind.PerTryTimeout ? Flag.UT : Flag.UC;
      this.res.destroy();
      this.finish(this.status);
      return;
    }
    this.respChunks = null;
    this.respHeaders = null;
    this.respBytes = 0;
    const r = this.fwd.retry;
    if (r !== null && retriableFailure(r, kind)) {
      if (this.canRetry()) {
        this.scheduleRetry();
        return;
      }
      if (this.tries > r.attempts) this.flags |= Flag.URX;
    }
    if (kind === FailureKind.PerTryTimeout) {
      this.flags |= Flag.UT;
      this.local(504, Body.timeout, null, GrpcStatus.DEADLINE_EXCEEDED);
    } else if (kind === FailureKind.ConnectFailure) {
      this.flags |= Flag.UF;
      this.local(503, Body.connectFailure, null);
    } else {
      this.flags |= Flag.UC;
      this.local(503, Body.reset, null);
    }
  }

  tryTimedOut(a: Attempt): void {
    this.tryTimer = null;
    if (a !== this.attempt || this.done) return;
    a.timedOut = true;
    const reason = new ProxyTimeout(true);
    a.cancel(reason);
    // Not yet on a connection (still connecting): undici cannot abort it before onConnect,
    // so end the try now rather than waiting for the connect timeout.
    if (!a.connected) a.onError(reason);
  }

  routeTimedOut(): void {
    this.routeTimer = null;
    if (this.done) return;
    this.cluster.stats.rqTimeout++;
    this.flags |= Flag.UT;
    if (this.responseStarted) {
      this.abandon(new ProxyTimeout(false));
      this.res.destroy();
      this.finish(this.status);
      return;
    }
    this.local(504, Body.timeout, null, GrpcStatus.DEADLINE_EXCEEDED);
  }

  /** StreamOwner: the connection can take more bytes; resume the paused upstream body. */
  streamDrain(): void {
    this.attempt?.resume?.();
  }

  /** StreamOwner: the client went away (Envoy flag DC). */
  streamClosed(): void {
    if (this.done) return;
    this.flags |= Flag.DC;
    this.finish(this.responseStarted ? this.status : 0);
  }

  /**
   * Sends a local reply and ends the exchange. gRPC requests get a trailers-only reply with
   * `grpcStatus` (>= 0) or the status mapped from `status` (Envoy: timeouts DEADLINE_EXCEEDED).
   */
  private local(status: number, body: string, extra: string[] | null, grpcStatus = -1): void {
    if (this.done) return;
    const n = writeLocal(this.res, status, body, extra, grpcStatus);
    this.respBytes = n;
    if (this.grpc) {
      const g = localGrpcStatus(this.res, status, grpcStatus);
      if (g >= 0) {
        this.grpcStatus = g;
        this.finish(200);
        return;
      }
    }
    this.finish(status);
  }

  /** Ends the exchange once: stops timers and tries, records metrics. */
  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    this.abandon(DOWNSTREAM_GONE);
    this.recorder.record(
      this.cluster,
      this.endpoint,
      status,
      this.flags,
      this.startMs,
      this.res.bodyBytes,
      this.respBytes,
      this.grpc ? Protocol.grpc : Protocol.http,
      this.grpcStatus,
      peerOfStream(this.res),
      this.res,
    );
  }

  private abandon(reason: Error): void {
    this.waitCancelled = true;
    if (this.routeTimer !== null) clearTimeout(this.routeTimer);
    if (this.tryTimer !== null) clearTimeout(this.tryTimer);
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer);
    this.routeTimer = this.tryTimer = this.backoffTimer = null;
    const a = this.attempt;
    if (a !== null && !a.discard) a.cancel(reason);
  }
}
