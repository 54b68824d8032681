/**
 * VirtualService HTTP rules -> table routes for one listener port and one workload (Istio's
 * BuildHTTPRoutesForVirtualService): a rule with N matches becomes N routes in order; matches
 * whose `port`, `sourceLabels`, `sourceNamespace` or `gateways` exclude this proxy are dropped
 * here (so tables differ per workload); a match-all route ends the list.
 */
import type { HTTPMatchRequest, HTTPRoute, StringMatchT } from '../api/networking/virtual-service.js';
import { resolveShortName } from '../registry/host.js';
import { selects } from '../registry/kube-objects.js';
import type { MeshService, VirtualServiceConfig, WorkloadIdentity } from '../registry/types.js';
import { MESH_GATEWAY } from '../registry/visibility.js';
import type {
  Cors,
  HeaderMatch,
  HeaderOps,
  Route,
  RouteMatch,
  StringMatch,
  WeightedCluster,
} from '../tables/index.js';
import { clusterName } from '../tables/index.js';
import { durationMs } from './durations.js';
import { convertRetries, defaultRetries } from './retries.js';
import type { Warn } from './warnings.js';

export interface RouteContext {
  port: number;
  workload: Pick<WorkloadIdentity, 'namespace' | 'labels'>;
  /** Visible services by hostname: a destination without port on a one-port service uses that port. */
  services: ReadonlyMap<string, { service: MeshService }>;
  warn: Warn;
}

/** Does this match apply to this proxy? (Istio's sourceMatchHTTP, with the sidecar's `mesh` gateway.) */
export function sourceMatches(m: HTTPMatchRequest | undefined, w: RouteContext['workload']): boolean {
  if (!m) return true;
  if (m.gateways && m.gateways.length > 0) return m.gateways.includes(MESH_GATEWAY);
  if (m.sourceLabels && !selects(m.sourceLabels, w.labels)) return false;
  return !m.sourceNamespace || m.sourceNamespace === w.namespace;
}

/** True when any match of the VirtualService depends on who the source is. */
export function hasSourceConditions(vs: VirtualServiceConfig): boolean {
  return (
    (vs.spec.http ?? []).some((r) =>
      (r.match ?? []).some((m) => m.sourceLabels || m.sourceNamespace || m.gateways?.length),
    ) ||
    [...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])].some((r) =>
      (r.match ?? []).some((m) => m.sourceLabels || m.sourceNamespace || m.gateways?.length),
    )
  );
}

export function translateVirtualService(vs: VirtualServiceConfig, ctx: RouteContext): Route[] {
  const out: Route[] = [];
  const where = `VirtualService ${vs.namespace}/${vs.name}`;
  for (const [i, rule] of (vs.spec.http ?? []).entries()) {
    if (rule.delegate) {
      ctx.warn(
        where,
        `spec.http[${i}].delegate: delegate VirtualServices are not supported yet; rule skipped`,
      );
      continue;
    }
    let catchAll = false;
    if (!rule.match || rule.match.length === 0) {
      out.push(translateRoute(vs, rule, undefined, ctx, `spec.http[${i}]`));
      catchAll = true;
    } else {
      for (const [j, m] of rule.match.entries()) {
        if (m.port && m.port !== ctx.port) continue;
        if (!sourceMatches(m, ctx.workload)) continue;
        const r = translateRoute(vs, rule, m, ctx, `spec.http[${i}].match[${j}]`);
        out.push(r);
        if (r.match === undefined || isEmptyMatch(r.match)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}

function isEmptyMatch(m: RouteMatch): boolean {
  return Object.keys(m).length === 0 || (Object.keys(m).length === 1 && m.path?.prefix === '/');
}

function stringMatch(s: StringMatchT | undefined): StringMatch | undefined {
  if (!s) return undefined;
  if (s.exact !== undefined) return { exact: s.exact };
  if (s.prefix !== undefined) return { prefix: s.prefix };
  if (s.regex !== undefined) return { regex: s.regex };
  return undefined;
}

/** Istio: an empty StringMatch, or regex `*`, means "present". */
function headerMatches(
  map: Record<string, StringMatchT> | undefined,
  where: string,
  ctx: RouteContext,
  field: string,
): HeaderMatch[] {
  const out: HeaderMatch[] = [];
  for (const name of Object.keys(map ?? {}).sort()) {
    if (name.startsWith('@request.auth.claims')) {
      ctx.warn(
        where,
        `${field}[${JSON.stringify(name)}]: JWT claim matches are not supported yet; condition ignored`,
      );
      continue;
    }
    const sm = map![name];
    const m = sm?.regex === '*' ? undefined : stringMatch(sm);
    out.push(m ? { name: name.toLowerCase(), match: m } : { name: name.toLowerCase() });
  }
  return out;
}

function translateMatch(
  m: HTTPMatchRequest | undefined,
  where: string,
  ctx: RouteContext,
): RouteMatch | undefined {
  if (!m) return undefined;
  const out: RouteMatch = {};
  const path = stringMatch(m.uri);
  if (path) out.path = path;
  if (m.ignoreUriCase) out.ignoreCase = true;
  const headers = headerMatches(m.headers, `VirtualService ${where}`, ctx, 'headers');
  if (headers.length) out.headers = headers;
  const without = headerMatches(m.withoutHeaders, `VirtualService ${where}`, ctx, 'withoutHeaders');
  if (without.length) out.withoutHeaders = without;
  const qp = Object.keys(m.queryParams ?? {})
    .sort()
    .map((name) => {
      const sm = m.queryParams![name];
      const x = sm?.regex === '*' ? undefined : stringMatch(sm);
      return x ? { name, match: x } : { name };
    });
  if (qp.length) out.queryParams = qp;
  const method = stringMatch(m.method);
  if (method) out.method = method;
  const authority = stringMatch(m.authority);
  if (authority) out.authority = authority;
  if (m.scheme)
    ctx.warn(
      `VirtualService ${where}`,
      'scheme matches are not supported by the proxy tables yet; condition ignored',
    );
  return Object.keys(out).length ? out : undefined;
}

/** Istio's header operations: `set`/`add`/`remove`, with Host/:authority turned into a rewrite. */
function headerOps(
  h: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } | undefined,
): {
  ops?: HeaderOps;
  authority?: string;
} {
  if (!h) return {};
  let authority: string | undefined;
  const internal = (k: string) => k.startsWith(':') || k.toLowerCase() === 'host';
  const pick = (m: Record<string, string> | undefined) => {
    const out: Record<string, string> = {};
    for (const k of Object.keys(m ?? {}).sort()) {
      if (k.toLowerCase() === ':authority' || k.toLowerCase() === 'host') authority = m![k];
      else if (!internal(k)) out[k] = m![k]!;
    }
    return Object.keys(out).length ? out : undefined;
  };
  const add = pick(h.add);
  const addAuthority = authority;
  authority = undefined;
  const set = pick(h.set);
  authority ??= addAuthority;
  const remove = (h.remove ?? []).filter((k) => !internal(k));
  const ops: HeaderOps = {};
  if (remove.length) ops.remove = remove;
  if (set) ops.set = set;
  if (add) ops.add = add;
  return { ...(Object.keys(ops).length ? { ops } : {}), ...(authority ? { authority } : {}) };
}

/** `outbound|port|subset|host` for a destination (Istio's GetDestinationCluster). */
export function destinationCluster(
  d: { host?: string; subset?: string; port?: { number?: number } } | undefined,
  vsNamespace: string,
  ctx: Pick<RouteContext, 'port' | 'services'>,
): string {
  const host = resolveShortName(d?.host ?? '', vsNamespace);
  const svc = ctx.services.get(host)?.service;
  const port = d?.port?.number ?? (svc && svc.ports.length === 1 ? svc.ports[0]!.port : ctx.port);
  return clusterName({ direction: 'outbound', port, subset: d?.subset ?? '', host });
}

/** gRPC status names (Istio's grpcStatus is the name) -> codes. */
const GRPC_CODES: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

function percent(p: { value?: number } | undefined, legacy: number | undefined): number | undefined {
  if (p?.value !== undefined) return p.value;
  return legacy;
}

function translateRoute(
  vs: VirtualServiceConfig,
  rule: HTTPRoute,
  m: HTTPMatchRequest | undefined,
  ctx: RouteContext,
  path: string,
): Route {
  const where = `${vs.namespace}/${vs.name}`;
  const route: Route = {};
  const name = m?.name ? `${rule.name ?? ''}.${m.name}` : rule.name;
  if (name) route.name = name;
  const match = translateMatch(m, `${where}: ${path}`, ctx);
  if (match) route.match = match;
  const { ops, authority } = headerOps(rule.headers?.request);
  const resp = headerOps(rule.headers?.response).ops;
  if (ops) route.requestHeaders = ops;
  if (resp) route.responseHeaders = resp;

  if (rule.redirect) {
    const r = rule.redirect;
    const red: NonNullable<Route['redirect']> = {};
    const scheme = r.scheme === 'https' || r.scheme === 'http' ? r.scheme : undefined;
    if (scheme) red.scheme = scheme;
    if (r.authority) red.host = r.authority;
    let port = r.port ?? (r.derivePort === 'FROM_REQUEST_PORT' ? ctx.port : undefined);
    if ((port === 80 && (scheme ?? 'http') === 'http') || (port === 443 && scheme === 'https'))
      port = undefined;
    if (port !== undefined) red.port = port;
    if (r.uri !== undefined) red.path = r.uri;
    const code = r.redirectCode ?? 301;
    if (code === 301 || code === 302 || code === 303 || code === 307 || code === 308) red.code = code;
    route.redirect = red;
  } else if (rule.directResponse) {
    const d = rule.directResponse;
    const body =
      d.body?.string ?? (d.body?.bytes ? Buffer.from(d.body.bytes, 'base64').toString('utf8') : undefined);
    route.directResponse = { status: d.status ?? 200, ...(body !== undefined ? { body } : {}) };
  } else {
    route.forward = forwardAction(vs, rule, route, authority, ctx);
  }

  if (rule.fault) {
    const f = rule.fault;
    const fault: NonNullable<Route['fault']> = {};
    const delay = durationMs(f.delay?.fixedDelay);
    if (delay !== undefined) {
      const pct = percent(f.delay?.percentage, f.delay?.percent);
      fault.delay = { fixedDelayMs: delay, ...(pct !== undefined ? { percentage: pct } : {}) };
    } else if (f.delay?.exponentialDelay)
      ctx.warn(`VirtualService ${where}`, `${path}: fault.delay.exponentialDelay is not supported`);
    const grpc = f.abort?.grpcStatus !== undefined ? GRPC_CODES[f.abort.grpcStatus.toUpperCase()] : undefined;
    if (f.abort?.httpStatus !== undefined || grpc !== undefined) {
      const pct = percent(f.abort?.percentage, undefined);
      fault.abort = {
        ...(f.abort?.httpStatus !== undefined ? { httpStatus: f.abort.httpStatus } : {}),
        ...(grpc !== undefined ? { grpcStatus: grpc } : {}),
        ...(pct !== undefined ? { percentage: pct } : {}),
      };
    }
    if ((f.abort?.grpcStatus && grpc === undefined) || f.abort?.http2Error)
      ctx.warn(
        `VirtualService ${where}`,
        `${path}: fault.abort.${f.abort?.http2Error ? 'http2Error' : 'grpcStatus'} is not supported`,
      );
    if (fault.delay || fault.abort) route.fault = fault;
  }
  if (rule.corsPolicy) route.cors = translateCors(rule.corsPolicy);
  return route;
}

function translateCors(c: NonNullable<HTTPRoute['corsPolicy']>): Cors {
  const origins =
    c.allowOrigins?.map(stringMatch).filter((x): x is StringMatch => !!x) ??
    (c.allowOrigin ?? []).map((o) => ({ exact: o }));
  const out: Cors = { allowOrigins: origins };
  if (c.allowMethods?.length) out.allowMethods = [...c.allowMethods];
  if (c.allowHeaders?.length) out.allowHeaders = [...c.allowHeaders];
  if (c.exposeHeaders?.length) out.exposeHeaders = [...c.exposeHeaders];
  const maxAge = durationMs(c.maxAge);
  if (maxAge !== undefined) out.maxAgeSeconds = Math.floor(maxAge / 1000);
  if (c.allowCredentials !== undefined) out.allowCredentials = c.allowCredentials;
  return out;
}

function forwardAction(
  vs: VirtualServiceConfig,
  rule: HTTPRoute,
  route: Route,
  authority: string | undefined,
  ctx: RouteContext,
): NonNullable<Route['forward']> {
  const dests = rule.route ?? [];
  let clusters: WeightedCluster[];
  const toCluster = (d: (typeof dests)[number], weight: number): WeightedCluster => {
    const wc: WeightedCluster = { cluster: destinationCluster(d.destination, vs.namespace, ctx), weight };
    const req = headerOps(d.headers?.request).ops;
    const resp = headerOps(d.headers?.response).ops;
    if (req) wc.requestHeaders = req;
    if (resp) wc.responseHeaders = resp;
    return wc;
  };
  if (dests.length === 1) clusters = [toCluster(dests[0]!, 100)];
  else {
    // Istio drops 0-weight destinations when others exist.
    clusters = dests.filter((d) => (d.weight ?? 0) > 0).map((d) => toCluster(d, d.weight!));
    if (clusters.length === 0) clusters = dests.map((d) => toCluster(d, 1));
  }
  const fwd: NonNullable<Route['forward']> = { clusters };
  const timeout = durationMs(rule.timeout);
  if (timeout !== undefined && timeout > 0) fwd.timeoutMs = timeout;
  const retries = rule.retries
    ? convertRetries(rule.retries, `VirtualService ${vs.namespace}/${vs.name}`, ctx.warn)
    : defaultRetries();
  if (retries) fwd.retries = retries;

  const rw = rule.rewrite;
  let rewriteAuthority = authority;
  if (rw) {
    const rewrite: NonNullable<NonNullable<Route['forward']>['rewrite']> = {};
    if (rw.uriRegexRewrite?.match)
      rewrite.pathRegex = {
        pattern: rw.uriRegexRewrite.match,
        substitution: rw.uriRegexRewrite.rewrite ?? '',
      };
    else if (rw.uri !== undefined) {
      const p = route.match?.path;
      if (p?.prefix !== undefined) rewrite.pathPrefix = rw.uri;
      else if (p === undefined) {
        // Envoy's route without a path match is a prefix "/" match; say so, so prefix rewrite applies.
        route.match = { path: { prefix: '/' }, ...(route.match ?? {}) };
        rewrite.pathPrefix = rw.uri;
      } else rewrite.path = rw.uri;
    }
    if (rw.authority) rewriteAuthority = rw.authority;
    if (rewriteAuthority) rewrite.authority = rewriteAuthority;
    if (Object.keys(rewrite).length) fwd.rewrite = rewrite;
  } else if (rewriteAuthority) fwd.rewrite = { authority: rewriteAuthority };

  const mirrors: NonNullable<NonNullable<Route['forward']>['mirrors']> = [];
  if (rule.mirror) {
    const pct = percent(rule.mirrorPercentage, rule.mirrorPercent);
    if (pct === undefined || pct > 0)
      mirrors.push({
        cluster: destinationCluster(rule.mirror, vs.namespace, ctx),
        ...(pct !== undefined && pct < 100 ? { percentage: pct } : {}),
      });
  }
  for (const mp of rule.mirrors ?? []) {
    const pct = mp.percentage?.value;
    if (!mp.destination || (pct !== undefined && pct <= 0)) continue;
    mirrors.push({
      cluster: destinationCluster(mp.destination, vs.namespace, ctx),
      ...(pct !== undefined && pct < 100 ? { percentage: pct } : {}),
    });
  }
  if (mirrors.length) fwd.mirrors = mirrors;
  return fwd;
}
