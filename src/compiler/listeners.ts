/**
 * Listeners: `virtualOutbound` (15001) serves every outbound HTTP port by route config
 * (`routeByPort`) and accepts forward-proxy requests (local mode sets HTTP_PROXY); TCP/TLS
 * service ports get one listener each, named like Envoy's `<vip>_<port>`, pointing at the
 * service's cluster (or the VirtualService `tcp` route's).
 */
import { PORTS } from '../api/mesh.js';
import type { ScopedService } from '../registry/scope.js';
import type { MeshService, ServicePort, VirtualServiceConfig, WorkloadIdentity } from '../registry/types.js';
import type { Listener } from '../tables/index.js';
import { clusterName } from '../tables/index.js';
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

/** The cluster of the first VirtualService `tcp` rule that applies to this proxy and port. */
function tcpRouteCluster(
  vs: VirtualServiceConfig | undefined,
  port: number,
  ctx: {
    workload: Pick<WorkloadIdentity, 'namespace' | 'labels'>;
    services: ReadonlyMap<string, { service: MeshService }>;
  },
  warn: Warn,
): string | undefined {
  if (!vs) return undefined;
  for (const rule of vs.spec.tcp ?? []) {
    const applies =
      !rule.match?.length ||
      rule.match.some((m) => (!m.port || m.port === port) && sourceMatches(m, ctx.workload));
    if (!applies || !rule.route?.length) continue;
    const dests = [...rule.route].sort((a, b) => (b.weight ?? 0) - (a.weight ?? 0));
    if (dests.length > 1)
      warn(
        `VirtualService ${vs.namespace}/${vs.name}`,
        'weighted TCP routes are not in the proxy tables yet; using the heaviest destination',
      );
    return destinationCluster(dests[0]!.destination, vs.namespace, { port, services: ctx.services });
  }
  return undefined;
}

export function tcpListeners(
  services: readonly ScopedService[],
  owners: ReadonlyMap<string, VirtualServiceConfig>,
  ctx: {
    workload: Pick<WorkloadIdentity, 'namespace' | 'labels'>;
    services: ReadonlyMap<string, { service: MeshService }>;
  },
  warn: Warn,
): { listeners: Listener[]; referenced: Map<string, string> } {
  const byName = new Map<string, Listener>();
  const referenced = new Map<string, string>();
  for (const { service: svc, ports } of services) {
    for (const p of ports) {
      const protocol = l4Protocol(p);
      if (!protocol) continue;
      const address = svc.addresses.find((a) => !a.includes('/')) ?? '0.0.0.0';
      const name = `${address}_${p.port}`;
      if (byName.has(name)) {
        // Istio: two services on one address:port cannot both be served; the first keeps it.
        warn(
          `Service ${svc.namespace}/${svc.name}`,
          `port ${p.port} conflicts with another service on ${address}:${p.port}; not served`,
        );
        continue;
      }
      const owner = owners.get(svc.hostname);
      const viaRoute = tcpRouteCluster(owner, p.port, ctx, warn);
      const cluster =
        viaRoute ?? clusterName({ direction: 'outbound', port: p.port, subset: '', host: svc.hostname });
      referenced.set(cluster, viaRoute && owner ? `VirtualService ${owner.namespace}/${owner.name}` : '');
      byName.set(name, { name, direction: 'outbound', port: p.port, address, protocol, cluster });
    }
  }
  const listeners = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { listeners, referenced };
}
