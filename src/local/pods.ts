/**
 * The registry side of local mode: each running instance is a Pod object (the workload's labels
 * and service account, its loopback address as pod IP) so the real registry derives endpoints
 * from selector Services exactly as for a cluster without EndpointSlices; the watched mesh
 * directory's snapshot is laid over that base.
 */
import { canonicalJson, shortHash } from '../registry/hash.js';
import { buildSnapshot } from '../registry/snapshot.js';
import type { ConfigResource, MeshService, MeshSnapshot } from '../registry/types.js';
import { byCreation } from '../registry/visibility.js';
import type { LocalWorkload } from './manifests.js';

export interface PodPlacement {
  workload: LocalWorkload;
  podName: string;
  ip: string;
}

/** `reviews-v1` replica 0 -> `reviews-v1-0` (what `POD_NAME` and the metrics show). */
export function podNameOf(w: LocalWorkload, replica: number): string {
  return `${w.identity.name}-${replica}`;
}

export function podObject(p: PodPlacement): Record<string, unknown> {
  const id = p.workload.identity;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.podName,
      namespace: id.namespace,
      labels: id.labels,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: p.workload.kind, name: id.name }],
    },
    spec: {
      serviceAccountName: id.serviceAccount,
      containers: [{ name: p.workload.containerName }],
    },
    status: { podIP: p.ip, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

/** Snapshot of the manifests' Services (+ Istio objects) and one Pod per running instance. */
export function baseSnapshot(objects: readonly unknown[], pods: readonly PodPlacement[]): MeshSnapshot {
  return buildSnapshot([...objects, ...pods.map(podObject)]);
}

type Configs = ConfigResource<unknown>[];

function mergeConfigs<T extends ConfigResource<unknown>>(base: readonly T[], over: readonly T[]): T[] {
  const key = (c: T) => `${c.kind}/${c.namespace}/${c.name}`;
  const out = new Map<string, T>();
  for (const c of base) out.set(key(c), c);
  for (const c of over) out.set(key(c), c); // the watched directory wins
  return [...out.values()].sort(byCreation);
}

/**
 * `base` (workloads) with `mesh` (the watched directory) laid over it: services and endpoints
 * of both (base wins for a Kubernetes Service defined in both), config objects of both (the
 * directory wins), the directory's mesh settings. Same shape and hashing as buildSnapshot.
 */
export function overlaySnapshot(base: MeshSnapshot, mesh: MeshSnapshot): MeshSnapshot {
  const services = new Map<string, MeshService>();
  for (const s of mesh.services) services.set(s.key, s);
  for (const s of base.services) services.set(s.key, s);
  const endpoints = new Map(mesh.endpoints);
  for (const [k, v] of base.endpoints) endpoints.set(k, v);
  const snap: Omit<MeshSnapshot, 'version'> = {
    mesh: mesh.mesh,
    services: [...services.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    endpoints: new Map([...endpoints.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    virtualServices: mergeConfigs(base.virtualServices, mesh.virtualServices),
    destinationRules: mergeConfigs(base.destinationRules, mesh.destinationRules),
    sidecars: mergeConfigs(base.sidecars, mesh.sidecars),
    gateways: mergeConfigs(base.gateways, mesh.gateways),
    peerAuthentications: mergeConfigs(base.peerAuthentications as Configs, mesh.peerAuthentications),
  };
  return { ...snap, version: shortHash(canonicalJson(snap)) };
}

/** `Kind ns/name` of every config object in the snapshot (for the status line). */
export function configNames(s: MeshSnapshot): string[] {
  const all: Configs = [
    ...s.destinationRules,
    ...s.virtualServices,
    ...s.sidecars,
    ...s.gateways,
    ...s.peerAuthentications,
  ];
  return all.map((c) => `${c.kind} ${c.namespace}/${c.name}`).sort();
}
