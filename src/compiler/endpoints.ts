/**
 * Registry endpoints -> table endpoints for one cluster (service port + optional subset
 * labels). Not-ready endpoints are left out (Istio's default). Cached per snapshot: the same
 * cluster has the same endpoints for every proxy that sees it.
 */

import { DEFAULT_TRUST_DOMAIN } from '../api/mesh.js';
import type { TrafficPolicy } from '../api/networking/destination-rule.js';
import { getOrCreate } from '../registry/hash.js';
import { selects } from '../registry/kube-objects.js';
import { podLabelLocality } from '../registry/kubernetes.js';
import type { MeshEndpoint, MeshService, MeshSnapshot, ServicePort } from '../registry/types.js';
import type { Endpoint, Locality, Workload } from '../tables/index.js';

const TLS_MODE = 'security.istio.io/tlsMode';

/** Istio's pod locality override label, `region.zone.subzone` (labels cannot hold '/'). */
export const podLocality: (labels: Readonly<Record<string, string>>) => Locality | undefined =
  podLabelLocality;

/** Istio's default cluster ID (`topology.istio.io/cluster`): one cluster, so all equal. */
const CLUSTER_ID = 'Kubernetes';

/**
 * The value of a failoverPriority label for a workload or endpoint, with Istio's augmented
 * topology labels: region/zone/subzone come from the locality, the cluster label is the one
 * cluster's id; any other key is the pod label ('' when absent).
 */
export function priorityLabelValue(
  labels: Readonly<Record<string, string>>,
  locality: Locality | undefined,
  key: string,
): string {
  switch (key) {
    case 'topology.kubernetes.io/region':
      return locality?.region ?? '';
    case 'topology.kubernetes.io/zone':
      return locality?.zone ?? '';
    case 'topology.istio.io/subzone':
      return locality?.subzone ?? '';
    case 'topology.istio.io/cluster':
      return labels[key] ?? CLUSTER_ID;
    default:
      return labels[key] ?? '';
  }
}

const PRIORITY_KEYS = new WeakMap<MeshSnapshot, string[]>();

/** Label keys named by any DestinationRule's failoverPriority: endpoints carry their values. */
export function failoverPriorityKeys(snap: MeshSnapshot): string[] {
  return getOrCreate(PRIORITY_KEYS, snap, () => {
    const keys = new Set<string>();
    const add = (p: TrafficPolicy | undefined) => {
      const add1 = (lb: TrafficPolicy['loadBalancer']) => {
        for (const e of lb?.localityLbSetting?.failoverPriority ?? []) {
          const eq = e.indexOf('=');
          const k = eq < 0 ? e : e.slice(0, eq);
          if (k) keys.add(k);
        }
      };
      add1(p?.loadBalancer);
      for (const pl of p?.portLevelSettings ?? []) add1(pl.loadBalancer);
    };
    for (const dr of snap.destinationRules) {
      add(dr.spec.trafficPolicy);
      for (const s of dr.spec.subsets ?? []) add(s.trafficPolicy);
    }
    return [...keys].sort();
  });
}
const CACHE = new WeakMap<MeshSnapshot, Map<string, Endpoint[]>>();

function portOf(ep: MeshEndpoint, svc: MeshService, port: ServicePort): number | undefined {
  const named = ep.ports[port.name];
  if (named !== undefined) return named;
  const values = Object.values(ep.ports);
  if (svc.ports.length === 1 && values.length === 1) return values[0];
  if (typeof port.targetPort === 'number' && port.targetPort > 0) return port.targetPort;
  // A named targetPort without an EndpointSlice port to resolve it: unknown, skip the endpoint.
  return typeof port.targetPort === 'string' ? undefined : port.port;
}

function workloadOf(ep: MeshEndpoint): Workload | undefined {
  const w: Workload = {};
  if (ep.workloadName) w.name = ep.workloadName;
  if (ep.workloadName || ep.podName) w.namespace = ep.namespace;
  const app = ep.labels.app ?? ep.labels['app.kubernetes.io/name'];
  if (app) w.app = app;
  const version = ep.labels.version ?? ep.labels['app.kubernetes.io/version'];
  if (version) w.version = version;
  if (ep.serviceAccount)
    w.principal = `spiffe://${DEFAULT_TRUST_DOMAIN}/ns/${ep.namespace}/sa/${ep.serviceAccount}`;
  return Object.keys(w).length ? w : undefined;
}

export function clusterEndpoints(
  snap: MeshSnapshot,
  svc: MeshService,
  port: ServicePort,
  subsetLabels: Record<string, string> | undefined,
): Endpoint[] {
  const cache = getOrCreate(CACHE, snap, () => new Map<string, Endpoint[]>());
  const key = `${svc.key}|${port.port}|${port.name}|${subsetLabels ? JSON.stringify(subsetLabels) : ''}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  const priorityKeys = failoverPriorityKeys(snap);
  for (const ep of snap.endpoints.get(svc.key) ?? []) {
    if (!ep.ready) continue;
    if (subsetLabels && !selects(subsetLabels, ep.labels)) continue;
    const p = portOf(ep, svc, port);
    if (p === undefined || p <= 0 || p > 65535) continue;
    const id = `${ep.address}:${p}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const e: Endpoint = { address: ep.address, port: p };
    const tlsMode = ep.labels[TLS_MODE];
    if (tlsMode) e.labels = { [TLS_MODE]: tlsMode };
    for (const k of priorityKeys) {
      const v = priorityLabelValue(ep.labels, ep.locality, k);
      if (v) e.labels = { ...e.labels, [k]: v };
    }
    if (ep.locality) e.locality = { ...ep.locality };
    if (ep.weight && ep.weight > 0) e.weight = ep.weight;
    const w = workloadOf(ep);
    if (w) e.workload = w;
    out.push(e);
  }
  cache.set(key, out);
  return out;
}
