/**
 * Listeners: `virtualOutbound` (15001) serves every outbound HTTP port by route config
 * (`routeByPort`) and accepts forward-proxy requests (local mode sets HTTP_PROXY); TCP/TLS
 * service ports get one listener each, named like Envoy's `<vip>_<port>`, pointing at the
 * service's cluster, or the VirtualService `tcp`/`tls` routes (l4Routes, by SNI and destination).
 */
import { PORTS } from '../api/mesh.js';
import type { VirtualServiceSpec } from '../api/networking/virtual-service.js';
import type { ScopedService } from '../registry/scope.js';
import type { MeshService, ServicePort, VirtualServiceConfig, WorkloadIdentity } from '../registry/types.js';
import type { L4Route, L4WeightedCluster, Listener } from '../tables/index.js';
import { clusterName, PASSTHROUGH_CLUSTER, sniPatternError } from '../tables/index.js';
import { destinationCluster, sourceMatches } from './http-routes.js';
import type { Warn } from './warnings.js';

export const OUTBOUND_LISTENER = 'virtualOutbound';
export const INBOUND_LISTENER = 'virtualInbound';

export function outboundHttpListener(): Listener {
  return {
    name: OUTBOUND_LISTENER,
    direction: 'outbound',
    port: PORTS.outboundCapture,
    protocol: 'http',
    routeByPort: true,
    explicitProxy: true,
  };
}

function l4Protocol(p: ServicePort): 'tcp' | 'tls' | undefined {
  switch (p.protocol) {
    case 'TCP':
    case 'MONGO':
    case 'REDIS':
    case 'MYSQL':
      return 'tcp';
    case 'TLS':
    case 'HTTPS':
      return 'tls';
    default:
      return undefined;
  }
}

interface L4Context {
  workload: Pick<WorkloadIdentity, 'namespace' | 'labels'>;
  services: ReadonlyMap<string, { service: MeshService }>;
  /** outboundTrafficPolicy ALLOW_ANY: unmatched SNI on a 0.0.0.0 tls listener passes through. */
  allowAny?: boolean;
}

type RouteDestinations = NonNullable<NonNullable<VirtualServiceSpec['tcp']>[number]['route']>;

/** A rule's destinations as weighted clusters (Istio drops 0-weight ones when others exist). */
function weightedClusters(
  dests: RouteDestinations,
  vs: VirtualServiceConfig,
  port: number,
  ctx: L4Context,
): L4WeightedCluster[] {
  const to = (d: RouteDestinations[number], weight: number): L4WeightedCluster => ({
    cluster: destinationCluster(d.destination, vs.namespace, { port, services: ctx.services }),
    weight,
  });
  if (dests.length === 1) return [to(dests[0]!, 100)];
  const weighted = dests.filter((d) => (d.weight ?? 0) > 0).map((d) => to(d, d.weight!));
  return weighted.length > 0 ? weighted : dests.map((d) => to(d, 1));
}

/**
 * The L4 routes of one tcp/tls service port, as Istio builds the filter chains of an outbound
 * listener (pilot/pkg/networking/core/tls.go):
 * - tls port: one route per `tls` match that applies to this proxy and port (sniHosts,
 *   destinationSubnets). With any, a connection matching none (unknown or no SNI) is not the
 *   service's: closed on a VIP-bound listener (Envoy: no filter chain), passed through to the
 *   original destination on a 0.0.0.0-bound one when outboundTrafficPolicy is ALLOW_ANY.
 *   Without any, everything goes to the service's cluster. `tcp` rules do not apply to tls
 *   ports (Istio skips them there).
 * - tcp port: matches with destinationSubnets become routes; the first rule without a match
 *   (or with an applicable match without subnets) is the catch-all and ends the walk; no
 *   catch-all = the service's cluster. A single-destination catch-all is the listener
 *   `cluster`; a weighted one is a last route without match.
 * port, sourceLabels, sourceNamespace and gateways (`mesh`) are decided here, per workload.
 */
export function l4Routes(
  vs: VirtualServiceConfig | undefined,
  port: number,
  protocol: 'tcp' | 'tls',
  serviceCluster: string,
  wildcardBound: boolean,
  ctx: L4Context,
  warn: Warn,
): { cluster?: string; l4Routes?: L4Route[]; viaVs: string[] } {
  if (!vs) return { cluster: serviceCluster, viaVs: [] };
  const where = `VirtualService ${vs.namespace}/${vs.name}`;
  const routes: L4Route[] = [];
  const applies = (m: { port?: number } & Parameters<typeof sourceMatches>[0]) =>
    (!m?.port || m.port === port) && sourceMatches(m, ctx.workload);
  if (protocol === 'tls') {
    for (const [i, rule] of (vs.spec.tls ?? []).entries()) {
      if (!rule.route?.length) continue;
      const clusters = weightedClusters(rule.route, vs, port, ctx);
      for (const [j, m] of (rule.match ?? []).entries()) {
        if (!applies(m)) continue;
        const sniHosts: string[] = [];
        for (const h of m.sniHosts ?? []) {
          const lower = h.toLowerCase();
          const bad = sniPatternError(lower);
          if (bad) warn(where, `spec.tls[${i}].match[${j}].sniHosts: "${h}" ${bad}; ignored`);
          else sniHosts.push(lower);
        }
        if (sniHosts.length === 0) continue;
        const match: L4Route['match'] = { sniHosts };
        if (m.destinationSubnets?.length) match.destinationSubnets = [...m.destinationSubnets];
        routes.push({ name: `${vs.namespace}/${vs.name}.tls[${i}]`, match, clusters });
      }
    }
    if (routes.length === 0) return { cluster: serviceCluster, viaVs: [] };
    const viaVs = routes.flatMap((r) => r.clusters.map((c) => c.cluster));
    if (!(wildcardBound && ctx.allowAny)) return { l4Routes: routes, viaVs };
    viaVs.push(PASSTHROUGH_CLUSTER);
    return { cluster: PASSTHROUGH_CLUSTER, l4Routes: routes, viaVs };
  }
  let fallback: L4WeightedCluster[] | undefined;
  for (const [i, rule] of (vs.spec.tcp ?? []).entries()) {
    if (!rule.route?.length) continue;
    const matches = rule.match ?? [];
    let catchAll = matches.length === 0;
    const subnets: string[] = [];
    for (const [j, m] of matches.entries()) {
      if (!applies(m)) continue;
      if (m.sourceSubnet)
        warn(
          where,
          `spec.tcp[${i}].match[${j}].sourceSubnet is not applied by sidecars; matching any source`,
        );
      if (!m.destinationSubnets?.length) {
        catchAll = true;
        break;
      }
      subnets.push(...m.destinationSubnets);
    }
    const clusters = weightedClusters(rule.route, vs, port, ctx);
    if (catchAll) {
      fallback = clusters;
      break;
    }
    if (subnets.length > 0)
      routes.push({
        name: `${vs.namespace}/${vs.name}.tcp[${i}]`,
        match: { destinationSubnets: subnets },
        clusters,
      });
  }
  const viaVs = routes.flatMap((r) => r.clusters.map((c) => c.cluster));
  const out: { cluster?: string; l4Routes?: L4Route[]; viaVs: string[] } = { viaVs };
  if (fallback === undefined) out.cluster = serviceCluster;
  else if (fallback.length === 1) {
    out.cluster = fallback[0]!.cluster;
    viaVs.push(out.cluster);
  } else {
    routes.push({ name: `${vs.namespace}/${vs.name}.tcp`, clusters: fallback });
    viaVs.push(...fallback.map((c) => c.cluster));
  }
  if (routes.length > 0) out.l4Routes = routes;
  return out;
}

/**
 * Adds a service to a 0.0.0.0 tls listener another service already has: both are told apart
 * by SNI (tls routes, else `sniHosts: [host]` as Istio's default chain of an address-less TLS
 * service); unmatched SNI goes to PassthroughCluster (ALLOW_ANY) or is closed.
 */
function mergeWildcardTls(
  listener: Listener,
  firstHost: string | undefined,
  host: string,
  serviceCluster: string,
  l4: { cluster?: string; l4Routes?: L4Route[] },
  ctx: L4Context,
): void {
  const routes = listener.l4Routes ?? [];
  if (firstHost !== undefined && listener.cluster !== undefined)
    routes.push({ match: { sniHosts: [firstHost] }, clusters: [{ cluster: listener.cluster, weight: 100 }] });
  if (l4.l4Routes) routes.push(...l4.l4Routes);
  else routes.push({ match: { sniHosts: [host] }, clusters: [{ cluster: serviceCluster, weight: 100 }] });
  listener.l4Routes = routes;
  if (ctx.allowAny) listener.cluster = PASSTHROUGH_CLUSTER;
  else delete listener.cluster;
}

export function tcpListeners(
  services: readonly ScopedService[],
  owners: ReadonlyMap<string, VirtualServiceConfig>,
  ctx: L4Context,
  warn: Warn,
): { listeners: Listener[]; referenced: Map<string, string> } {
  const byName = new Map<string, Listener>();
  /** 0.0.0.0 tls listeners: the host of the service whose default (`cluster`) they still carry. */
  const wildcardTls = new Map<string, string>();
  const referenced = new Map<string, string>();
  for (const { service: svc, ports } of services) {
    for (const p of ports) {
      const protocol = l4Protocol(p);
      if (!protocol) continue;
      const address = svc.addresses.find((a) => !a.includes('/')) ?? '0.0.0.0';
      const name = `${address}_${p.port}`;
      const owner = owners.get(svc.hostname);
      const serviceCluster = clusterName({
        direction: 'outbound',
        port: p.port,
        subset: '',
        host: svc.hostname,
      });
      const l4 = l4Routes(owner, p.port, protocol, serviceCluster, address === '0.0.0.0', ctx, warn);
      const source = owner ? `VirtualService ${owner.namespace}/${owner.name}` : '';
      const existing = byName.get(name);
      if (existing) {
        if (protocol === 'tls' && existing.protocol === 'tls' && address === '0.0.0.0') {
          // Istio merges the filter chains of address-less TLS services on one port: each
          // service keeps its SNI (its tls routes, else its host name); the rest passes through.
          mergeWildcardTls(existing, wildcardTls.get(name), svc.hostname, serviceCluster, l4, ctx);
          wildcardTls.delete(name);
          if (l4.cluster === serviceCluster)
            referenced.set(serviceCluster, referenced.get(serviceCluster) ?? '');
          for (const c of l4.viaVs) referenced.set(c, source);
          if (existing.cluster === PASSTHROUGH_CLUSTER) referenced.set(PASSTHROUGH_CLUSTER, '');
          continue;
        }
        // Istio: two services on one address:port cannot both be served; the first keeps it.
        warn(
          `Service ${svc.namespace}/${svc.name}`,
          `port ${p.port} conflicts with another service on ${address}:${p.port}; not served`,
        );
        continue;
      }
      if (l4.cluster === serviceCluster && !referenced.has(serviceCluster))
        referenced.set(serviceCluster, '');
      for (const c of l4.viaVs) referenced.set(c, source);
      const listener: Listener = { name, direction: 'outbound', port: p.port, address, protocol };
      if (l4.cluster !== undefined) listener.cluster = l4.cluster;
      if (l4.l4Routes) listener.l4Routes = l4.l4Routes;
      if (protocol === 'tls' && address === '0.0.0.0' && l4.cluster === serviceCluster)
        wildcardTls.set(name, svc.hostname);
      byName.set(name, listener);
    }
  }
  const listeners = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { listeners, referenced };
}
