/**
 * Inbound security on the HTTP path (src/authz/README.md, "What the proxy calls"): path
 * normalization -> JWT (RequestAuthentication) -> authorization -> local rate limit, for
 * requests on `inbound` listeners only.
 *
 * Hot path: the runtime is attached to the Snapshot only when the config has a non-empty
 * `security` section, so without one a request costs one property read and one branch. With
 * one, the attribute and decision objects are module-level scratch objects: they are filled
 * and read synchronously (never across an await), so one set serves every request. Only a
 * request that carries a token pays for a promise (and a closure) while its JWT is verified.
 */
import type { Socket } from 'node:net';
import {
  AuthzAttributes,
  AuthzCompileError,
  AuthzDecision,
  applyJwtHeaders,
  InboundSecurityRuntime,
  type JwtOutcome,
  normalizeRequestTarget,
  pathOf,
  RATE_LIMITED_BODY,
  RATE_LIMITED_STATUS,
  RateLimitDecision,
  RBAC_DENIED_BODY,
  rateLimitHeaders,
  wwwAuthenticate,
} from '../../authz/index.js';
import { clientAddressFromXff } from '../../authz/xff.js';
import type { InboundSecurity } from '../../tables/security.js';
import { Flag } from '../flags.js';
import { capturedOf } from '../sidecar/captured.js';
import type { Snapshot } from '../snapshot.js';
import { peerOf } from '../tls/peer.js';
import type { Downstream } from './downstream.js';
import { writeLocal } from './local-reply.js';

/** What the handler offers the security steps (http/handler.ts HttpHandler). */
export interface SecuredHandler {
  readonly spec: { readonly port: number };
  readonly recorder: {
    readonly log: { debug(message: string): unknown; error(message: string): unknown };
    /** Tracing / access log (null when off): records the dry-run and AUDIT outcome. */
    readonly telemetry: { noteAuthz(stream: Downstream, d: AuthzDecision): void } | null;
  };
  /** Routing and the route's action, with the (normalized) target and the (JWT-edited) headers. */
  routeRequest(
    stream: Downstream,
    snap: Snapshot,
    target: string,
    authority: string,
    raw: string[],
    startMs: number,
    sec: InboundSecurityRuntime | null,
    jwt: JwtOutcome | null,
  ): void;
  localDone(
    stream: Downstream,
    startMs: number,
    status: number,
    body: Buffer | null,
    headers: string[],
    flags: number,
  ): void;
}

const SECURITY: unique symbol = Symbol('isthmus.inboundSecurity');
/** On the runtime: numTrustedProxies when a policy in force reads the client address, else -1. */
const REMOTE_IP_HOPS: unique symbol = Symbol('isthmus.remoteIpHops');

interface WithSecurity {
  [SECURITY]?: InboundSecurityRuntime | null;
}
interface WithRemoteIpHops {
  [REMOTE_IP_HOPS]?: number;
}

/** The runtime of a config version, null when its tables have no (or an empty) security section. */
export function securityOf(snap: Snapshot): InboundSecurityRuntime | null {
  return (snap as WithSecurity)[SECURITY] ?? null;
}

function isEmpty(s: InboundSecurity | undefined): boolean {
  if (s === undefined) return true;
  const rl = s.rateLimit;
  return (
    !s.policies?.length &&
    !s.jwtRules?.length &&
    !rl?.workload &&
    (rl?.routes === undefined || Object.keys(rl.routes).length === 0)
  );
}

/** Whether any policy reads the original client address (remoteIpBlocks, notRemoteIpBlocks, remote.ip). */
export function usesRemoteIp(s: InboundSecurity | undefined): boolean {
  for (const p of s?.policies ?? [])
    for (const r of p.rules ?? []) {
      for (const f of r.from ?? [])
        if (f.source.remoteIpBlocks?.length || f.source.notRemoteIpBlocks?.length) return true;
      for (const c of r.when ?? []) if (c.key === 'remote.ip') return true;
    }
  return false;
}

/** One per proxy: the runtime and whether the current config enforces anything. */
export class InboundSecurityState {
  readonly runtime = new InboundSecurityRuntime();
  private active = false;
  /**
   * ProxyConfig `gatewayTopology.numTrustedProxies` (env PROXY_CONFIG): how many proxies in
   * front of this one append to X-Forwarded-For and are trusted (authz/xff.ts). Takes effect
   * with the next config applied.
   */
  xffNumTrustedHops = 0;

  /**
   * Applies a config's section and attaches the runtime to its snapshot. A section the engine
   * rejects (AuthzCompileError) keeps the previous version in force.
   */
  install(
    snap: Snapshot,
    section: InboundSecurity | undefined,
    log: { warn(message: string): unknown },
  ): void {
    try {
      this.runtime.apply(section ?? {});
      this.active = !isEmpty(section);
      // Only a config whose policies read remote.ip pays for parsing X-Forwarded-For.
      (this.runtime as WithRemoteIpHops)[REMOTE_IP_HOPS] = usesRemoteIp(section)
        ? this.xffNumTrustedHops
        : -1;
    } catch (err) {
      if (!(err instanceof AuthzCompileError)) throw err;
      log.warn(`security section of ${snap.version} rejected, previous policies kept: ${err.message}`);
    }
    (snap as WithSecurity)[SECURITY] = this.active ? this.runtime : null;
  }

  close(): void {
    this.runtime.close();
  }
}

// Scratch objects: filled and read synchronously per request (see the header comment).
const attrs = new AuthzAttributes();
const decision = new AuthzDecision();
const limit = new RateLimitDecision();
const BODY_DENIED = Buffer.from(RBAC_DENIED_BODY);
const BODY_LIMITED = Buffer.from(RATE_LIMITED_BODY);

function socketOf(stream: Downstream): Socket | undefined {
  const s = stream as unknown as {
    conn?: { socket?: Socket };
    stream?: { session?: { socket?: Socket } | undefined };
  };
  return s.conn?.socket ?? s.stream?.session?.socket;
}

/** `::ffff:10.0.0.1` -> `10.0.0.1` (dual-stack sockets report IPv4 peers mapped). */
function plainIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.length > 7 && ip.startsWith('::ffff:') && ip.indexOf('.') > 0 ? ip.slice(7) : ip;
}

/**
 * Steps 1 and 3 (normalization, JWT), then hands the request to `h.routeRequest`. Answers 400
 * for a target that cannot be normalized and 401 for a token that fails.
 */
export function beginInbound(
  h: SecuredHandler,
  sec: InboundSecurityRuntime,
  stream: Downstream,
  snap: Snapshot,
  rawTarget: string,
  authority: string,
  startMs: number,
): void {
  const target = normalizeRequestTarget(rawTarget, sec.pathNormalization);
  if (target === null) {
    h.localDone(stream, startMs, 400, null, [], 0);
    return;
  }
  const raw = stream.rawHeaders;
  if (!sec.jwt.enabled) {
    h.routeRequest(stream, snap, target, authority, raw, startMs, sec, null);
    return;
  }
  const o = sec.jwt.authenticate(raw, target);
  if (!(o instanceof Promise)) {
    afterJwt(h, sec, stream, snap, target, authority, startMs, o);
    return;
  }
  o.then(
    (outcome) => {
      try {
        afterJwt(h, sec, stream, snap, target, authority, startMs, outcome);
      } catch (err) {
        failed(h, stream, err);
      }
    },
    (err: unknown) => failed(h, stream, err),
  );
}

function failed(h: SecuredHandler, stream: Downstream, err: unknown): void {
  h.recorder.log.error(`inbound security failed: ${err instanceof Error ? err.stack : String(err)}`);
  if (!stream.headersSent) writeLocal(stream, 500, 'internal proxy error', null);
  else stream.destroy();
}

function afterJwt(
  h: SecuredHandler,
  sec: InboundSecurityRuntime,
  stream: Downstream,
  snap: Snapshot,
  target: string,
  authority: string,
  startMs: number,
  o: JwtOutcome,
): void {
  if (o.status === 'invalid') {
    const realm = `http://${authority}${pathOf(target)}`;
    h.localDone(stream, startMs, 401, Buffer.from(o.reason), ['www-authenticate', wwwAuthenticate(realm)], 0);
    return;
  }
  const raw = stream.rawHeaders;
  const headers = applyJwtHeaders(raw, o);
  h.routeRequest(
    stream,
    snap,
    target,
    authority,
    headers === raw ? raw : (headers as string[]),
    startMs,
    sec,
    o.status === 'ok' ? o : null,
  );
}

/**
 * Steps 4 and 5 (authorization, rate limit) once the route is known (`routeName` '' when none
 * matched). False when the request was answered (403 / 429).
 */
export function admitInbound(
  h: SecuredHandler,
  sec: InboundSecurityRuntime,
  stream: Downstream,
  jwt: JwtOutcome | null,
  target: string,
  authority: string,
  raw: readonly string[],
  routeName: string,
  startMs: number,
): boolean {
  const socket = socketOf(stream);
  const a = attrs.reset();
  a.sourceIp = plainIp(socket?.remoteAddress);
  const dst = capturedOf(socket);
  if (dst !== undefined) {
    a.destinationIp = dst.address;
    a.destinationPort = dst.port;
  } else {
    a.destinationIp = plainIp(socket?.localAddress);
    a.destinationPort = h.spec.port;
  }
  const peer = peerOf(socket);
  if (peer !== null) {
    a.sourcePrincipal = peer.identity;
    a.sni = peer.sni;
  }
  a.method = stream.method;
  a.host = authority;
  a.path = pathOf(target);
  a.headers = raw;
  if (jwt !== null) {
    a.requestPrincipal = jwt.principal;
    a.claims = jwt.claims;
  }
  const hops = (sec as WithRemoteIpHops)[REMOTE_IP_HOPS] ?? -1;
  if (hops >= 0) a.remoteIp = clientAddressFromXff(a.header('x-forwarded-for'), hops);
  const d = sec.engine.authorize(a, decision);
  if (d.dryRunAllowResult !== '' || d.dryRunDenyResult !== '') sec.dryRun.count(a.destinationPort, d);
  h.recorder.telemetry?.noteAuthz(stream, d);
  if (!d.allowed) {
    h.recorder.log.debug(`rbac_access_denied: ${d.reason} policy=${d.policy} rule=${d.ruleId}`);
    h.localDone(stream, startMs, 403, BODY_DENIED, [], 0);
    return false;
  }
  const r = sec.rateLimiter.check(routeName, limit);
  if (r.limited) {
    h.localDone(stream, startMs, RATE_LIMITED_STATUS, BODY_LIMITED, rateLimitHeaders(r), Flag.RL);
    return false;
  }
  return true;
}

/**
 * Per inbound TCP connection (tcp/, non-HTTP bytes, after the TLS handshake if any): only the
 * L4 fields of the policies apply (src/authz/README.md, "TCP"). False = close the connection.
 */
export function admitTcp(snap: Snapshot, down: Socket, listenerPort: number): boolean {
  const sec = securityOf(snap);
  if (sec === null || sec.engine.empty) return true;
  const a = attrs.reset();
  a.tcp = true;
  a.sourceIp = plainIp(down.remoteAddress);
  const dst = capturedOf(down);
  a.destinationIp = dst !== undefined ? dst.address : plainIp(down.localAddress);
  a.destinationPort = dst !== undefined ? dst.port : listenerPort;
  const peer = peerOf(down);
  if (peer !== null) {
    a.sourcePrincipal = peer.identity;
    a.sni = peer.sni;
  }
  return sec.engine.authorize(a, decision).allowed;
}
