/**
 * Inbound side: the workload's own service ports (Services in its namespace whose selector
 * matches its labels) become `inbound|<targetPort>||` clusters to the app on 127.0.0.1, and
 * the `virtualInbound` listener (15006) routes HTTP to them by destination port.
 */
import { PORTS } from '../api/mesh.js';
import { selects } from '../registry/kube-objects.js';
import { isHttpOrSniffed } from '../registry/protocol.js';
import type { MeshSnapshot, WorkloadIdentity } from '../registry/types.js';
import {
  type Cluster,
  clusterName,
  type Endpoint,
  type Listener,
  type Route,
  type RouteConfig,
} from '../tables/index.js';
import { INBOUND_LISTENER } from './listeners.js';
import type { Warn } from './warnings.js';

export interface InboundBuild {
  listeners: Listener[];
  routeConfigs: RouteConfig[];
  clusters: Cluster[];
  endpoints: Map<string, Endpoint[]>;
}

export const INBOUND_ROUTE_CONFIG = 'inbound|http|15006';

export function buildInbound(snap: MeshSnapshot, w: WorkloadIdentity, warn: Warn): InboundBuild {
  const ports = new Map<number, { http: boolean; service: string }>();
  for (const svc of snap.services) {
    if (svc.namespace !== w.namespace || !svc.selector || !selects(svc.selector, w.labels)) continue;
    // MESH_EXTERNAL ServiceEntries are not served by mesh workloads.
    if (svc.registry === 'ServiceEntry' && svc.meshExternal) continue;
    for (const p of svc.ports) {
      if (p.protocol === 'UDP') continue;
      let target = typeof p.targetPort === 'number' && p.targetPort > 0 ? p.targetPort : p.port;
      if (typeof p.targetPort === 'string') {
        // The container port number behind a named targetPort comes from the pods' endpoints.
        const eps = snap.endpoints.get(svc.key) ?? [];
        const ep =
          eps.find((e) => selects(w.labels, e.labels) && e.ports[p.name] !== undefined) ??
          eps.find((e) => e.ports[p.name] !== undefined);
        const n = ep?.ports[p.name];
        if (n === undefined) {
          warn(
            `Service ${svc.namespace}/${svc.name}`,
            `targetPort "${p.targetPort}" of port ${p.port} cannot be resolved; inbound port skipped`,
          );
          continue;
        }
        target = n;
      }
      const prev = ports.get(target);
      ports.set(target, {
        http: (prev?.http ?? true) && isHttpOrSniffed(p.protocol),
        service: prev?.service ?? svc.key,
      });
    }
  }
  const out: InboundBuild = { listeners: [], routeConfigs: [], clusters: [], endpoints: new Map() };
  const sorted = [...ports.keys()].sort((a, b) => a - b);
  const routes: Route[] = [];
  for (const port of sorted) {
    const name = clusterName({ direction: 'inbound', port, subset: '', host: '' });
    out.clusters.push({ name });
    out.endpoints.set(name, [{ address: '127.0.0.1', port }]);
    if (ports.get(port)!.http)
      routes.push({ name, match: { port }, forward: { clusters: [{ cluster: name, weight: 100 }] } });
  }
  if (routes.length === 0) return out;
  // With one HTTP port every request is for it: no port match, so it also works before the
  // proxy knows original destinations.
  if (routes.length === 1) delete routes[0]!.match;
  out.routeConfigs.push({
    name: INBOUND_ROUTE_CONFIG,
    virtualHosts: [{ name: 'inbound|http|*', domains: ['*'], routes }],
  });
  out.listeners.push({
    name: INBOUND_LISTENER,
    direction: 'inbound',
    port: PORTS.inboundCapture,
    protocol: 'http',
    routeConfig: INBOUND_ROUTE_CONFIG,
  });
  return out;
}
