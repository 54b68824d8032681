/**
 * Outbound HTTP route configs, one per service port (Envoy's `9080` route config): a virtual
 * host per visible service, carrying the routes of the VirtualService that owns its host (the
 * most specific VirtualService host: exact, else the longest wildcard) or the default route.
 * A VirtualService whose rules all exclude this workload leaves its services on the default
 * route, as in Istio.
 */

import { CLUSTER_DOMAIN } from '../api/mesh.js';
import { getOrCreate } from '../registry/hash.js';
import { HostIndex, hostSubsetOf, isWildcard } from '../registry/host.js';
import { isHttpOrSniffed } from '../registry/protocol.js';
import { type ScopedService, type SidecarScope, vsHosts } from '../registry/scope.js';
import type { MeshService, MeshSettings, VirtualServiceConfig, WorkloadIdentity } from '../registry/types.js';
import {
  clusterName,
  PASSTHROUGH_CLUSTER,
  type Route,
  type RouteConfig,
  type VirtualHost,
} from '../tables/index.js';
import {
  hasSourceConditions,
  type RouteContext,
  sourceMatches,
  translateVirtualService,
} from './http-routes.js';
import { defaultRetries } from './retries.js';
import type { Warn } from './warnings.js';

/** For each service of the scope, the VirtualService owning its host (Istio's most specific match). */
const OWNERS = new WeakMap<SidecarScope, Map<string, VirtualServiceConfig>>();

export function vsOwners(scope: SidecarScope): Map<string, VirtualServiceConfig> {
  let owners = OWNERS.get(scope);
  if (owners) return owners;
  owners = new Map();
  const candidates: Array<[string, VirtualServiceConfig]> = [];
  for (const vs of scope.virtualServices) for (const h of vsHosts(vs)) candidates.push([h, vs]);
  const index = new HostIndex(candidates);
  for (const { service } of scope.services) {
    const vs = index.lookup(service.hostname);
    if (vs) owners.set(service.hostname, vs);
  }
  OWNERS.set(scope, owners);
  return owners;
}

/** Host header forms a caller in `proxyNs` may use for the service (Istio's alt virtual hosts). */
export function serviceDomains(svc: MeshService, port: number, proxyNs: string): string[] {
  const names = [svc.hostname];
  const suffix = `.${CLUSTER_DOMAIN}`;
  if (svc.registry === 'Kubernetes' && svc.hostname.endsWith(suffix)) {
    const short = svc.hostname.slice(0, -suffix.length); // name.ns
    if (svc.namespace === proxyNs) names.push(svc.name);
    names.push(short, `${short}.svc`);
  }
  // Headless: pods are addressed as <pod>.<service>... (StatefulSets).
  if (svc.registry === 'Kubernetes' && svc.resolution === 'NONE') names.push(...names.map((n) => `*.${n}`));
  names.push(...svc.addresses.filter((a) => !a.includes('/')).map((a) => (a.includes(':') ? `[${a}]` : a)));
  const out: string[] = [];
  for (const n of names) out.push(n, `${n}:${port}`);
  return out;
}

function defaultRoute(svc: MeshService, port: number): Route {
  return {
    name: 'default',
    forward: {
      clusters: [
        {
          cluster: clusterName({ direction: 'outbound', port, subset: '', host: svc.hostname }),
          weight: 100,
        },
      ],
      retries: defaultRetries(),
    },
  };
}

/**
 * Per-snapshot memo of the pieces many proxies share: a default virtual host depends only on
 * the service, port and whether the caller is in the service's namespace; a VirtualService's
 * routes only on the scope, port and which of its source conditions hold.
 */
export interface RouteMemo {
  defaults: Map<string, VirtualHost>;
  vsRoutes: Map<string, { routes: Route[]; warnings: Array<[string, string]> }>;
  vsHosts: Map<string, VirtualHost>;
}

export function newRouteMemo(): RouteMemo {
  return { defaults: new Map(), vsRoutes: new Map(), vsHosts: new Map() };
}

function sourceBits(vs: VirtualServiceConfig, w: Pick<WorkloadIdentity, 'namespace' | 'labels'>): string {
  if (!hasSourceConditions(vs)) return '';
  let bits = '';
  for (const r of vs.spec.http ?? []) for (const m of r.match ?? []) bits += sourceMatches(m, w) ? '1' : '0';
  return bits;
}

function memoRoutes(
  memo: RouteMemo,
  scope: SidecarScope,
  vs: VirtualServiceConfig,
  ctx: RouteContext,
): { routes: Route[]; key: string } {
  const key = `${vs.namespace}/${vs.name}|${ctx.port}|${sourceBits(vs, ctx.workload)}|${scope.key}`;
  let hit = memo.vsRoutes.get(key);
  if (!hit) {
    const warnings: Array<[string, string]> = [];
    hit = {
      routes: translateVirtualService(vs, { ...ctx, warn: (r, m) => warnings.push([r, m]) }),
      warnings,
    };
    memo.vsRoutes.set(key, hit);
  }
  for (const [r, m] of hit.warnings) ctx.warn(r, m);
  return { routes: hit.routes, key };
}

function memoHost(map: Map<string, VirtualHost>, key: string, make: () => VirtualHost): VirtualHost {
  return getOrCreate(map, key, make);
}

export interface RouteBuild {
  routeConfigs: RouteConfig[];
  /** Every cluster a route forwards or mirrors to -> the resource that asked for it. */
  referenced: Map<string, string>;
}

export function buildRouteConfigs(
  mesh: MeshSettings,
  scope: SidecarScope,
  workload: Pick<WorkloadIdentity, 'namespace' | 'labels'>,
  warn: Warn,
  memo: RouteMemo = newRouteMemo(),
): RouteBuild {
  const owners = vsOwners(scope);
  const byPort = new Map<number, ScopedService[]>();
  for (const s of scope.services)
    for (const p of s.ports)
      if (isHttpOrSniffed(p.protocol)) (byPort.get(p.port) ?? byPort.set(p.port, []).get(p.port)!).push(s);

  const routeConfigs: RouteConfig[] = [];
  const referenced = new Map<string, string>();
  const ownsSomething = new Set<VirtualServiceConfig>(owners.values());
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const ctx: RouteContext = { port, workload, services: scope.byHost, warn };
    const vhosts: VirtualHost[] = [];
    const served = new Set<string>();
    const ownedOnPort = new Map<VirtualServiceConfig, ScopedService[]>();
    for (const s of byPort.get(port)!) {
      const vs = owners.get(s.service.hostname);
      if (vs) (ownedOnPort.get(vs) ?? ownedOnPort.set(vs, []).get(vs)!).push(s);
    }
    // In scope order; Istio's port-80 rule: a VirtualService for hosts outside the registry is served on port 80.
    const vsOnPort = scope.virtualServices.filter(
      (vs) => ownedOnPort.has(vs) || (port === 80 && !ownsSomething.has(vs)),
    );
    for (const vs of vsOnPort) {
      const { routes, key: routesKey } = memoRoutes(memo, scope, vs, ctx);
      if (routes.length === 0) continue;
      for (const r of routes) {
        for (const c of r.forward?.clusters ?? [])
          if (!referenced.has(c.cluster))
            referenced.set(c.cluster, `VirtualService ${vs.namespace}/${vs.name}`);
        for (const m of r.forward?.mirrors ?? [])
          if (!referenced.has(m.cluster))
            referenced.set(m.cluster, `VirtualService ${vs.namespace}/${vs.name}`);
      }
      const owned = ownedOnPort.get(vs) ?? [];
      for (const s of owned) {
        served.add(s.service.hostname);
        const same = s.service.namespace === workload.namespace;
        vhosts.push(
          memoHost(memo.vsHosts, `${s.service.key}|${port}|${same}|${routesKey}`, () => ({
            name: `${s.service.hostname}:${port}`,
            domains: serviceDomains(s.service, port, workload.namespace),
            routes,
          })),
        );
      }
      // VirtualService hosts that name no service here (e.g. `bookinfo.example.com`).
      for (const h of vsHosts(vs)) {
        if (scope.byHost.has(h) || (isWildcard(h) && owned.some((s) => hostSubsetOf(s.service.hostname, h))))
          continue;
        vhosts.push({ name: `${h}:${port}`, domains: [h, `${h}:${port}`], routes });
      }
    }
    for (const s of byPort.get(port)!) {
      if (served.has(s.service.hostname)) continue;
      const same = s.service.namespace === workload.namespace;
      vhosts.push(
        memoHost(memo.defaults, `${s.service.key}|${port}|${same}`, () => ({
          name: `${s.service.hostname}:${port}`,
          domains: serviceDomains(s.service, port, workload.namespace),
          routes: [defaultRoute(s.service, port)],
        })),
      );
    }
    const deduped = dedupeDomains(vhosts);
    deduped.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    deduped.push(catchAll(mesh));
    if (mesh.outboundTrafficPolicy === 'ALLOW_ANY') referenced.set(PASSTHROUGH_CLUSTER, '');
    routeConfigs.push({ name: String(port), port, virtualHosts: deduped });
  }
  return { routeConfigs, referenced };
}

/** First virtual host keeps a domain (Istio's dedupeDomains); emptied hosts are dropped. */
function dedupeDomains(vhosts: VirtualHost[]): VirtualHost[] {
  const seen = new Set<string>();
  const names = new Set<string>();
  const out: VirtualHost[] = [];
  for (const vh of vhosts) {
    if (names.has(vh.name)) continue;
    names.add(vh.name);
    const domains = vh.domains.filter((d) => {
      const k = d.toLowerCase();
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (domains.length) out.push(domains.length === vh.domains.length ? vh : { ...vh, domains });
  }
  return out;
}

/** Unknown hosts on a known port: pass through (ALLOW_ANY, Istio's default) or 502 (REGISTRY_ONLY). */
function catchAll(mesh: MeshSettings): VirtualHost {
  if (mesh.outboundTrafficPolicy === 'REGISTRY_ONLY')
    return {
      name: 'block_all',
      domains: ['*'],
      routes: [{ name: 'block_all', directResponse: { status: 502 } }],
    };
  return {
    name: 'allow_any',
    domains: ['*'],
    routes: [{ name: 'allow_any', forward: { clusters: [{ cluster: PASSTHROUGH_CLUSTER, weight: 100 }] } }],
  };
}
