/**
 * Kubernetes registry: Services + EndpointSlices (discovery.k8s.io v1 and v1beta1) + Pods +
 * Nodes -> MeshServices and MeshEndpoints. Pure: objects in, model out.
 */
import { CLUSTER_DOMAIN } from '../api/mesh.js';
import { arr, isObj, type Meta, metaOf, num, type Obj, obj, str, strMap } from './kube-objects.js';
import { protocolOfPort } from './protocol.js';
import type { Locality, MeshEndpoint, MeshService, ServicePort } from './types.js';

export interface KubeObjects {
  services: Obj[];
  endpointSlices: Obj[];
  pods: Obj[];
  nodes: Obj[];
}

const ZONE = 'topology.kubernetes.io/zone';
const REGION = 'topology.kubernetes.io/region';
const SUBZONE = 'topology.istio.io/subzone';
const SERVICE_NAME = 'kubernetes.io/service-name';

/** The Node labels locality is read from (all the registry needs of a Node). */
export const NODE_LOCALITY_LABELS: readonly string[] = [
  REGION,
  ZONE,
  SUBZONE,
  'failure-domain.beta.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
];

export function serviceFromKube(o: Obj): MeshService | undefined {
  const meta = metaOf(o);
  const spec = obj(o.spec);
  if (!meta.name) return undefined;
  // ExternalName services are aliases in Istio; not modelled yet (skipped, not misrouted).
  if (spec.type === 'ExternalName') return undefined;
  const ports: ServicePort[] = [];
  for (const p of arr(spec.ports)) {
    if (!isObj(p)) continue;
    const port = num(p.port);
    if (port === undefined) continue;
    const name = str(p.name) ?? '';
    const target =
      typeof p.targetPort === 'number' || typeof p.targetPort === 'string' ? p.targetPort : undefined;
    ports.push({
      name,
      port,
      ...(target !== undefined ? { targetPort: target } : {}),
      protocol: protocolOfPort(name, str(p.appProtocol), str(p.protocol)),
    });
  }
  ports.sort((a, b) => a.port - b.port);
  const clusterIP = str(spec.clusterIP);
  const headless = clusterIP === 'None';
  const exportTo = meta.annotations['networking.istio.io/exportTo'];
  const selector = strMap(spec.selector);
  const hostname = `${meta.name}.${meta.namespace}.${CLUSTER_DOMAIN}`;
  return {
    key: `${meta.namespace}/${hostname}`,
    hostname,
    name: meta.name,
    namespace: meta.namespace,
    ports,
    addresses: clusterIP && !headless ? [clusterIP] : [],
    exportTo: exportTo
      ? exportTo
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .sort()
      : [],
    // A headless service has no VIP: Istio treats it as passthrough to the endpoint IPs.
    resolution: headless ? 'NONE' : 'STATIC',
    meshExternal: false,
    registry: 'Kubernetes',
    ...(Object.keys(selector).length ? { selector } : {}),
    ...(meta.creationTimestamp ? { creationTimestamp: meta.creationTimestamp } : {}),
  };
}

/** `reviews-v1-5d9f8c7b4-x2k9q` owned by ReplicaSet `reviews-v1-5d9f8c7b4` -> `reviews-v1`. */
export function workloadNameOf(meta: Meta): string {
  const owner = meta.ownerReferences[0];
  const ownerName = owner ? str(owner.name) : undefined;
  if (owner && ownerName) {
    const hash = meta.labels['pod-template-hash'];
    if (owner.kind === 'ReplicaSet' && hash && ownerName.endsWith(`-${hash}`))
      return ownerName.slice(0, -hash.length - 1);
    if (owner.kind === 'Job' && meta.labels['batch.kubernetes.io/controller-uid']) return ownerName;
    return ownerName;
  }
  return meta.name;
}

interface PodInfo {
  meta: Meta;
  serviceAccount?: string;
  nodeName?: string;
  containerPorts: Map<string, number>;
}

function podIndex(pods: Obj[]): Map<string, PodInfo> {
  const out = new Map<string, PodInfo>();
  for (const p of pods) {
    const meta = metaOf(p);
    const spec = obj(p.spec);
    const containerPorts = new Map<string, number>();
    for (const c of arr(spec.containers)) {
      for (const cp of arr(obj(c).ports)) {
        const name = str(obj(cp).name);
        const port = num(obj(cp).containerPort);
        if (name && port !== undefined) containerPorts.set(name, port);
      }
    }
    // Kubernetes runs a pod without one as the namespace's `default` service account.
    const sa = str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? 'default';
    const node = str(spec.nodeName);
    out.set(`${meta.namespace}/${meta.name}`, {
      meta,
      ...(sa ? { serviceAccount: sa } : {}),
      ...(node ? { nodeName: node } : {}),
      containerPorts,
    });
  }
  return out;
}

/** Node name -> locality from its topology labels (nodes without any are left out). */
export function nodeLocalities(nodes: readonly Obj[]): Map<string, Locality> {
  const out = new Map<string, Locality>();
  for (const n of nodes) {
    const meta = metaOf(n, '');
    const l = localityFromLabels(meta.labels);
    if (l) out.set(meta.name, l);
  }
  return out;
}

/** Istio's pod locality override label, `region.zone.subzone` (labels cannot hold '/'). */
export const LOCALITY_LABEL = 'istio-locality';

/** The `istio-locality` pod label as a locality (undefined when absent or empty). */
export function podLabelLocality(labels: Readonly<Record<string, string>>): Locality | undefined {
  const v = labels[LOCALITY_LABEL];
  if (!v) return undefined;
  const [region, zone, subzone] = v.split('.');
  if (!region && !zone && !subzone) return undefined;
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subzone ? { subzone } : {}) };
}

/**
 * A pod's locality as Istio derives it: the `istio-locality` label if set, else the topology
 * labels of the node it runs on (spec.nodeName).
 */
export function podLocalityOf(
  labels: Readonly<Record<string, string>>,
  nodeName: string | undefined,
  nodes: ReadonlyMap<string, Locality>,
): Locality | undefined {
  return podLabelLocality(labels) ?? (nodeName ? nodes.get(nodeName) : undefined);
}

/** Node topology labels (current, then the deprecated failure-domain ones) as a locality. */
function localityFromLabels(labels: Record<string, string>): Locality | undefined {
  const region = labels[REGION] ?? labels['failure-domain.beta.kubernetes.io/region'];
  const zone = labels[ZONE] ?? labels['failure-domain.beta.kubernetes.io/zone'];
  const subzone = labels[SUBZONE];
  if (!region && !zone && !subzone) return undefined;
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subzone ? { subzone } : {}) };
}

/**
 * Endpoints per service key from EndpointSlices. v1 has `zone`/`nodeName` per endpoint and
 * `conditions.ready`; v1beta1 has `topology` labels. Pods give labels, SA and workload name.
 */
export function endpointsFromKube(
  k: KubeObjects,
  services: Map<string, MeshService>,
): Map<string, MeshEndpoint[]> {
  const pods = podIndex(k.pods);
  const nodes = nodeLocalities(k.nodes);
  const out = new Map<string, MeshEndpoint[]>();
  for (const slice of k.endpointSlices) {
    const meta = metaOf(slice);
    const svcName = meta.labels[SERVICE_NAME];
    if (!svcName) continue;
    const key = `${meta.namespace}/${svcName}.${meta.namespace}.${CLUSTER_DOMAIN}`;
    const svc = services.get(key);
    if (!svc) continue;
    const ports: Record<string, number> = {};
    for (const p of arr(slice.ports)) {
      const port = num(obj(p).port);
      if (port !== undefined) ports[str(obj(p).name) ?? ''] = port;
    }
    const list = out.get(key) ?? [];
    for (const e of arr(slice.endpoints)) {
      if (!isObj(e)) continue;
      const cond = obj(e.conditions);
      // Absent `ready` means ready (API doc); terminating endpoints are left to drain.
      const ready = cond.ready !== false && cond.terminating !== true;
      const ref = obj(e.targetRef);
      const pod =
        ref.kind === 'Pod' ? pods.get(`${str(ref.namespace) ?? meta.namespace}/${str(ref.name)}`) : undefined;
      const nodeName = str(e.nodeName) ?? pod?.nodeName;
      const topology = strMap(e.topology);
      const zone = str(e.zone) ?? topology[ZONE];
      let locality = pod ? podLabelLocality(pod.meta.labels) : undefined;
      locality ??= nodeName ? nodes.get(nodeName) : undefined;
      if (!locality && (zone || topology[REGION]))
        locality = localityFromLabels({ ...topology, ...(zone ? { [ZONE]: zone } : {}) });
      for (const a of arr(e.addresses)) {
        const address = str(a);
        if (!address) continue;
        list.push({
          address,
          ports: { ...ports },
          labels: pod ? pod.meta.labels : {},
          namespace: meta.namespace,
          ...(pod?.serviceAccount ? { serviceAccount: pod.serviceAccount } : {}),
          ...(pod ? { workloadName: workloadNameOf(pod.meta), podName: pod.meta.name } : {}),
          ...(locality ? { locality } : {}),
          ready,
        });
      }
    }
    out.set(key, list);
  }
  return out;
}

export { localityFromLabels, podIndex };

/**
 * Endpoints of a selector Service that has no EndpointSlice (local mode: YAML holds Pods but
 * no controller-manager made slices): what the EndpointSlice controller would have produced.
 */
export function endpointsFromPods(svc: MeshService, pods: Obj[], nodes: Obj[]): MeshEndpoint[] {
  if (!svc.selector) return [];
  const index = podIndex(pods);
  const localities = nodeLocalities(nodes);
  const out: MeshEndpoint[] = [];
  for (const [key, info] of index) {
    if (!key.startsWith(`${svc.namespace}/`)) continue;
    let match = true;
    for (const k in svc.selector) if (info.meta.labels[k] !== svc.selector[k]) match = false;
    if (!match) continue;
    const raw = pods.find((p) => {
      const m = metaOf(p);
      return m.namespace === info.meta.namespace && m.name === info.meta.name;
    });
    const status = obj(raw?.status);
    const address = str(status.podIP);
    if (!address) continue;
    const readyCond = arr(status.conditions)
      .map(obj)
      .find((c) => c.type === 'Ready');
    const ports: Record<string, number> = {};
    for (const p of svc.ports) {
      const t = p.targetPort;
      const n = typeof t === 'number' ? t : typeof t === 'string' ? info.containerPorts.get(t) : p.port;
      if (n !== undefined) ports[p.name] = n;
    }
    const locality = podLocalityOf(info.meta.labels, info.nodeName, localities);
    out.push({
      address,
      ports,
      labels: info.meta.labels,
      namespace: info.meta.namespace,
      ...(info.serviceAccount ? { serviceAccount: info.serviceAccount } : {}),
      workloadName: workloadNameOf(info.meta),
      podName: info.meta.name,
      ...(locality ? { locality } : {}),
      ready: readyCond ? readyCond.status === 'True' : true,
    });
  }
  return out;
}
