/**
 * The HTTP request path of one listener: authority -> route config -> virtual host -> route
 * -> action. Local actions (no route, redirect, direct response, CORS preflight) are
 * answered here; forward routes become an Exchange. Reads the snapshot current at arrival,
 * so a config swap never changes a request already in flight.
 */
import { randomUUID } from 'node:crypto';
import type { InboundSecurityRuntime, JwtOutcome } from '../../authz/index.js';
import type { Listener } from '../../tables/index.js';
import { Flag } from '../flags.js';
import { getHeader, hasHeader, isHopByHop } from '../headers.js';
import { BodyMode, isAbsoluteForm } from '../http1/head.js';
import { ActionKind, type CompiledRoute, type Target } from '../router/compiled.js';
import { RequestView, splitAuthority } from '../router/request-view.js';
import { capturedPort } from '../sidecar/captured.js';
import type { Snapshot } from '../snapshot.js';
import { tunnelUpgrade, upgradeOf } from '../tcp/upgrade.js';
import { Protocol } from '../telemetry/istio-metrics.js';
import { peerOfStream } from '../tls/peer.js';
import type { Downstream } from './downstream.js';
import { Exchange, RESPONSE_BUFFER_LIMIT } from './exchange.js';
import { admitInbound, beginInbound, type SecuredHandler, securityOf } from './inbound-security.js';
import {
  corsOrigin,
  localGrpcStatus,
  preflightHeaders,
  redirectLocation,
  writeLocal,
} from './local-reply.js';
import type { RequestRecorder } from './recorder.js';

/** Request bodies up to this size (with a Content-Length) are buffered: retriable, mirrorable. */
export const BODY_BUFFER_LIMIT = RESPONSE_BUFFER_LIMIT;

export class HttpHandler implements SecuredHandler {
  readonly spec: Listener;
  /** Inbound listeners run the inbound security steps (inbound-security.ts) when configured. */
  private readonly inbound: boolean;
  readonly recorder: RequestRecorder;
  private readonly current: () => Snapshot;
  readonly handle: (stream: Downstream) => void;

  constructor(spec: Listener, recorder: RequestRecorder, current: () => Snapshot) {
    this.spec = spec;
    this.recorder = recorder;
    this.current = current;
    this.handle = this.onRequest.bind(this);
    this.inbound = spec.direction === 'inbound';
  }

  /** Never lets an exception escape into the server (it would crash the process). */
  private onRequest(stream: Downstream): void {
    try {
      this.dispatch(stream);
    } catch (err) {
      this.recorder.stats.downstreamErrors++;
      this.recorder.log.error(`request handling failed: ${err instanceof Error ? err.stack : String(err)}`);
      if (!stream.headersSent) writeLocal(stream, 500, 'internal proxy error', null);
      else stream.destroy();
    }
  }

  private dispatch(stream: Downstream): void {
    const startMs = performance.now();
    const snap = this.current();
    const raw = stream.rawHeaders;
    let target = stream.url;
    let authority: string;
    // Absolute-form (forward-proxy mode): the URI's authority wins over Host (RFC 9112 3.2.2).
    if (isAbsoluteForm(target)) {
      const start = target.indexOf('//') + 2;
      let end = start;
      while (end < target.length && target.charCodeAt(end) !== 0x2f && target.charCodeAt(end) !== 0x3f) end++;
      authority = target.slice(start, end);
      target =
        end === target.length
          ? '/'
          : target.charCodeAt(end) === 0x3f
            ? `/${target.slice(end)}`
            : target.slice(end);
    } else {
      authority = getHeader(raw, 'host') ?? '';
    }
    const sec = this.inbound ? securityOf(snap) : null;
    if (sec !== null) beginInbound(this, sec, stream, snap, target, authority, startMs);
    else this.routeRequest(stream, snap, target, authority, raw, startMs, null, null);
  }

  routeRequest(
    stream: Downstream,
    snap: Snapshot,
    target: string,
    authority: string,
    raw: string[],
    startMs: number,
    sec: InboundSecurityRuntime | null,
    jwt: JwtOutcome | null,
  ): void {
    const spec = this.spec;
    const byAuthority = spec.routeByPort === true || spec.explicitProxy === true;
    // A captured connection routes by the port the app dialled (sidecar/captured.ts).
    const captured = capturedPort(stream);
    const port = captured !== 0 ? captured : byAuthority ? (splitAuthority(authority).port ?? 80) : spec.port;
    const rc = spec.routeByPort
      ? snap.routeConfigByPort.get(port)
      : snap.routeConfigs.get(spec.routeConfig ?? '');
    const vhost = rc?.vhosts.find(authority);
    if (vhost === undefined) {
      if (sec !== null && !admitInbound(this, sec, stream, jwt, target, authority, raw, '', startMs)) return;
      this.noRoute(stream, startMs);
      return;
    }
    const view = new RequestView(stream.method, target, authority, port, raw);
    let route: CompiledRoute | undefined;
    for (const r of vhost.routes) {
      if (r.matcher.matches(view)) {
        route = r;
        break;
      }
    }
    if (
      sec !== null &&
      !admitInbound(this, sec, stream, jwt, target, authority, raw, route?.name ?? '', startMs)
    )
      return;
    if (route === undefined) {
      this.noRoute(stream, startMs);
      return;
    }

    let origin: string | null = null;
    if (route.cors !== null) {
      const o = view.header('origin');
      if (o !== undefined && corsOrigin(route.cors, o)) {
        origin = o;
        if (view.method === 'OPTIONS' && hasHeader(raw, 'access-control-request-method')) {
          this.localDone(stream, startMs, 200, null, preflightHeaders(route.cors, o), 0);
          return;
        }
      }
    }

    if (route.kind === ActionKind.Direct) {
      const headers: string[] = [];
      for (const plan of route.responseOps) plan.apply(headers);
      this.localDone(stream, startMs, route.directStatus, route.directBody, headers, 0);
      return;
    }
    if (route.kind === ActionKind.Redirect) {
      const r = route.redirect!;
      const location = redirectLocation(r, view, route.matcher.prefixLength);
      const headers = ['location', location];
      for (const plan of route.responseOps) plan.apply(headers);
      this.localDone(stream, startMs, r.code ?? 301, null, headers, 0);
      return;
    }
    this.forward(stream, route, view, origin, startMs);
  }

  private forward(
    stream: Downstream,
    route: CompiledRoute,
    view: RequestView,
    origin: string | null,
    startMs: number,
  ): void {
    const fwd = route.forward!;
    const target = pickTarget(fwd.targets, fwd.totalWeight);
    const raw = view.rawHeaders;

    // Body: buffer small sized bodies (retriable), stream the rest (never retried).
    const length = stream.contentLength;
    const chunked = stream.bodyMode === BodyMode.Chunked;
    const bufferBody = !chunked && length > 0 && length <= BODY_BUFFER_LIMIT;
    const streamBody = chunked || length > BODY_BUFFER_LIMIT;

    const rw = fwd.rewrite;
    let path = view.path;
    if (rw !== null) {
      if (rw.pathMode === 1) path = rw.value + view.path.slice(route.matcher.prefixLength);
      else if (rw.pathMode === 2) path = rw.value;
      else if (rw.pathMode === 3) path = view.path.replace(rw.re!, rw.value);
    }
    if (view.query) path = `${path}?${view.query}`;

    const headers: string[] = [];
    const connection = getHeader(raw, 'connection');
    const dropped = connection !== undefined ? connectionTokens(connection) : null;
    let hasRequestId = false;
    let hasProto = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (isHopByHop(name)) continue;
      const len = name.length;
      if (len === 4 || len === 12 || len === 14 || len === 17) {
        const lower = name.toLowerCase();
        if (lower === 'host') continue;
        if (lower === 'content-length' && !streamBody) continue; // undici sets it from the buffered body
        if (lower === 'x-request-id') hasRequestId = true;
        else if (lower === 'x-forwarded-proto') hasProto = true;
      }
      if (dropped?.has(name.toLowerCase())) continue;
      headers.push(name, raw[i + 1]!);
    }
    headers.push('host', rw?.authority ?? view.authority);
    if (!hasProto) headers.push('x-forwarded-proto', 'http');
    if (!hasRequestId) headers.push('x-request-id', randomUUID());
    target.requestOps.apply(headers);
    for (const plan of route.requestOps) plan.apply(headers);
    if (this.recorder.telemetry !== null) this.recorder.forwarded(stream, raw, headers, route.name);
    // WebSocket and other HTTP/1.1 upgrades: a dedicated upstream connection, piped after the 101.
    const upgrade = upgradeOf(stream, connection);
    if (upgrade !== null) {
      tunnelUpgrade(stream, target.cluster, this.recorder, path, headers, upgrade, startMs);
      return;
    }

    const ex = new Exchange(
      stream,
      route,
      target,
      this.recorder,
      path,
      headers,
      streamBody ? stream.bodyStream() : null,
      origin,
      0,
      startMs,
    );
    ex.start(bufferBody);
  }

  private noRoute(stream: Downstream, startMs: number): void {
    this.recorder.stats.rqNoRoute++;
    const n = writeLocal(stream, 404, null, null);
    if (stream.grpc === true) recordGrpcLocal(this.recorder, stream, 404, Flag.NR, startMs, n);
    else this.recorder.record(null, null, 404, Flag.NR, startMs, 0, n, 0, -1, peerOfStream(stream), stream);
  }

  localDone(
    stream: Downstream,
    startMs: number,
    status: number,
    body: Buffer | null,
    headers: string[],
    flags: number,
  ): void {
    this.recorder.stats.rqLocal++;
    const n = writeLocal(stream, status, body, headers);
    if (stream.grpc === true) recordGrpcLocal(this.recorder, stream, status, flags, startMs, n);
    else this.recorder.record(null, null, status, flags, startMs, 0, n, 0, -1, peerOfStream(stream), stream);
  }
}

/** Metrics of a local reply to a gRPC request (trailers-only: HTTP 200 + grpc-status). */
function recordGrpcLocal(
  recorder: RequestRecorder,
  stream: Downstream,
  status: number,
  flags: number,
  startMs: number,
  bytes: number,
): void {
  const g = localGrpcStatus(stream, status, -1);
  const peer = peerOfStream(stream);
  const code = g >= 0 ? 200 : status;
  recorder.record(null, null, code, flags, startMs, 0, bytes, Protocol.grpc, g, peer, stream);
}

function pickTarget(targets: readonly Target[], total: number): Target {
  if (targets.length === 1) return targets[0]!;
  const r = Math.random() * total;
  for (const t of targets) if (r < t.upTo) return t;
  return targets[targets.length - 1]!;
}

/** Header names listed in Connection (RFC 9110 7.6.1) are hop-by-hop for this message. */
function connectionTokens(value: string): Set<string> | null {
  const set = new Set<string>();
  for (const t of value.split(',')) {
    const token = t.trim().toLowerCase();
    if (token && token !== 'close' && token !== 'keep-alive') set.add(token);
  }
  return set.size ? set : null;
}
