/**
 * Compiles the route section of validated tables into the read-only structures of
 * compiled.ts. Runs once per config version, never per request.
 */
import type {
  Cors,
  Fault,
  ForwardAction,
  RetryPolicy,
  Rewrite,
  Route,
  RouteConfig,
  VirtualHost,
} from '../../tables/index.js';
import { compileForReplace, toReplaceTemplate } from '../../tables/index.js';
import { HeaderOpsPlan } from '../headers.js';
import { grpcToHttpStatus } from '../http2/grpc.js';
import type { ClusterState } from '../upstream/cluster.js';
import {
  ActionKind,
  type CompiledCors,
  type CompiledFault,
  type CompiledForward,
  type CompiledRetry,
  type CompiledRewrite,
  type CompiledRoute,
  type CompiledRouteConfig,
  type CompiledVirtualHost,
  RetryOnBit,
} from './compiled.js';
import { RouteMatcher, StringMatcher } from './matchers.js';
import { VirtualHostIndex } from './vhost-index.js';

export type ClusterLookup = (name: string) => ClusterState;

export function compileRouteConfig(rc: RouteConfig, clusters: ClusterLookup): CompiledRouteConfig {
  const vhosts = new VirtualHostIndex<CompiledVirtualHost>();
  for (const vh of rc.virtualHosts) {
    const compiled = compileVirtualHost(vh, clusters);
    for (const d of vh.domains) vhosts.add(d, compiled);
  }
  return { name: rc.name, vhosts };
}

function compileVirtualHost(vh: VirtualHost, clusters: ClusterLookup): CompiledVirtualHost {
  const vhReq = new HeaderOpsPlan(vh.requestHeaders);
  const vhResp = new HeaderOpsPlan(vh.responseHeaders);
  const vhCors = vh.cors ? compileCors(vh.cors) : null;
  const routes = vh.routes.map((r, i) => compileRoute(r, `${vh.name}/${i}`, clusters, vhReq, vhResp, vhCors));
  return { name: vh.name, routes };
}

function compileRoute(
  r: Route,
  fallbackName: string,
  clusters: ClusterLookup,
  vhReq: HeaderOpsPlan,
  vhResp: HeaderOpsPlan,
  vhCors: CompiledCors | null,
): CompiledRoute {
  const matcher = new RouteMatcher(r.match);
  const kind = r.forward ? ActionKind.Forward : r.redirect ? ActionKind.Redirect : ActionKind.Direct;
  const direct = r.directResponse;
  return {
    name: r.name ?? fallbackName,
    matcher,
    kind,
    forward: r.forward ? compileForward(r.forward, clusters) : null,
    redirect: r.redirect ?? null,
    directStatus: direct?.status ?? 0,
    directBody: direct?.body !== undefined ? Buffer.from(direct.body) : null,
    fault: r.fault ? compileFault(r.fault) : null,
    cors: r.cors ? compileCors(r.cors) : vhCors,
    requestOps: nonEmpty([new HeaderOpsPlan(r.requestHeaders), vhReq]),
    responseOps: nonEmpty([new HeaderOpsPlan(r.responseHeaders), vhResp]),
  };
}

function nonEmpty(plans: HeaderOpsPlan[]): HeaderOpsPlan[] {
  return plans.filter((p) => !p.empty);
}

function compileForward(f: ForwardAction, clusters: ClusterLookup): CompiledForward {
  let upTo = 0;
  const targets = [];
  for (const wc of f.clusters) {
    if (wc.weight === 0) continue;
    upTo += wc.weight;
    targets.push({
      cluster: clusters(wc.cluster),
      upTo,
      requestOps: new HeaderOpsPlan(wc.requestHeaders),
      responseOps: new HeaderOpsPlan(wc.responseHeaders),
    });
  }
  return {
    targets,
    totalWeight: upTo,
    timeoutMs: f.timeoutMs ?? 0,
    retry: f.retries && f.retries.attempts > 0 ? compileRetry(f.retries) : null,
    rewrite: f.rewrite ? compileRewrite(f.rewrite) : null,
    mirrors: (f.mirrors ?? []).map((m) => ({
      cluster: clusters(m.cluster),
      percentage: m.percentage ?? 100,
    })),
  };
}

const RETRY_BITS: Record<string, number> = {
  '5xx': RetryOnBit.status5xx,
  'gateway-error': RetryOnBit.gatewayError,
  reset: RetryOnBit.reset,
  'connect-failure': RetryOnBit.connectFailure,
  'retriable-4xx': RetryOnBit.retriable4xx,
  'refused-stream': RetryOnBit.refusedStream,
  'retriable-status-codes': RetryOnBit.statusCodes,
  cancelled: RetryOnBit.grpcCancelled,
  'deadline-exceeded': RetryOnBit.grpcDeadlineExceeded,
  internal: RetryOnBit.grpcInternal,
  'resource-exhausted': RetryOnBit.grpcResourceExhausted,
  unavailable: RetryOnBit.grpcUnavailable,
};

function compileRetry(r: RetryPolicy): CompiledRetry {
  let on = 0;
  for (const cond of r.retryOn) on |= RETRY_BITS[cond] ?? 0;
  const base = r.backoffBaseMs ?? 25;
  return {
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeoutMs ?? 0,
    on,
    codes: new Set(r.retriableStatusCodes ?? []),
    backoffBaseMs: base,
    backoffMaxMs: r.backoffMaxMs ?? base * 10,
  };
}

function compileRewrite(rw: Rewrite): CompiledRewrite {
  if (rw.pathRegex) {
    return {
      pathMode: 3,
      value: toReplaceTemplate(rw.pathRegex.substitution),
      re: compileForReplace(rw.pathRegex.pattern),
      authority: rw.authority ?? null,
    };
  }
  const pathMode = rw.pathPrefix !== undefined ? 1 : rw.path !== undefined ? 2 : 0;
  return { pathMode, value: rw.pathPrefix ?? rw.path ?? '', re: null, authority: rw.authority ?? null };
}

function compileFault(f: Fault): CompiledFault {
  return {
    delayMs: f.delay?.fixedDelayMs ?? 0,
    delayPct: f.delay ? (f.delay.percentage ?? 100) : 0,
    abortStatus: f.abort ? (f.abort.httpStatus ?? grpcToHttpStatus(f.abort.grpcStatus ?? 2)) : 0,
    abortGrpc: f.abort?.grpcStatus ?? -1,
    abortPct: f.abort ? (f.abort.percentage ?? 100) : 0,
  };
}

function compileCors(c: Cors): CompiledCors {
  return {
    origins: c.allowOrigins.map((o) => new StringMatcher(o)),
    allowMethods: (c.allowMethods ?? []).join(','),
    allowHeaders: (c.allowHeaders ?? []).join(','),
    exposeHeaders: (c.exposeHeaders ?? []).join(','),
    maxAge: c.maxAgeSeconds !== undefined ? String(c.maxAgeSeconds) : '',
    allowCredentials: c.allowCredentials === true,
  };
}
