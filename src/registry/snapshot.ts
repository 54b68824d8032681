/**
 * Builds a MeshSnapshot from plain objects (Kubernetes + Istio). Pure and deterministic:
 * the same set of objects in any order gives the same snapshot and the same `version`.
 * Objects are assumed already validated (config sources skip invalid ones); readers here
 * are still defensive so a bad object cannot throw.
 */
import { DEFAULT_ROOT_NAMESPACE } from '../api/mesh.js';
import { canonicalJson, getOrCreate, shortHash } from './hash.js';
import { isObj, metaOf, type Obj } from './kube-objects.js';
import { endpointsFromKube, endpointsFromPods, type KubeObjects, serviceFromKube } from './kubernetes.js';
import { servicesFromServiceEntry } from './service-entry.js';
import type { ConfigResource, MeshEndpoint, MeshService, MeshSettings, MeshSnapshot } from './types.js';
import { byCreation } from './visibility.js';

export const MESH_CONFIG_KINDS = [
  'VirtualService',
  'DestinationRule',
  'Sidecar',
  'Gateway',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'ServiceEntry',
] as const;

function groupOf(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function toConfig<S>(o: Obj): ConfigResource<S> {
  const meta = metaOf(o);
  return {
    kind: String(o.kind),
    name: meta.name,
    namespace: meta.namespace,
    spec: (isObj(o.spec) ? o.spec : {}) as S,
    ...(meta.creationTimestamp ? { creationTimestamp: meta.creationTimestamp } : {}),
    ...(o.kind === 'AuthorizationPolicy' && meta.annotations[DRY_RUN_ANNOTATION] !== undefined
      ? { annotations: { [DRY_RUN_ANNOTATION]: meta.annotations[DRY_RUN_ANNOTATION] } }
      : {}),
  };
}

/** AuthorizationPolicy annotation: evaluate and report, never enforce. */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

export function defaultMeshSettings(overrides: Partial<MeshSettings> = {}): MeshSettings {
  return { rootNamespace: DEFAULT_ROOT_NAMESPACE, outboundTrafficPolicy: 'ALLOW_ANY', ...overrides };
}

export function buildSnapshot(
  objects: readonly unknown[],
  settings: Partial<MeshSettings> = {},
): MeshSnapshot {
  const mesh = defaultMeshSettings(settings);
  const kube: KubeObjects = { services: [], endpointSlices: [], pods: [], nodes: [] };
  const configs = new Map<string, ConfigResource<unknown>[]>();
  const serviceEntries: Obj[] = [];
  for (const raw of objects) {
    if (!isObj(raw)) continue;
    const group = groupOf(raw.apiVersion);
    const kind = raw.kind;
    if (group === '' && kind === 'Service') kube.services.push(raw);
    else if (group === '' && kind === 'Pod') kube.pods.push(raw);
    else if (group === '' && kind === 'Node') kube.nodes.push(raw);
    else if (group === 'discovery.k8s.io' && kind === 'EndpointSlice') kube.endpointSlices.push(raw);
    else if (group === 'networking.istio.io' && kind === 'ServiceEntry') serviceEntries.push(raw);
    else if (group === 'networking.istio.io' || group === 'security.istio.io') {
      getOrCreate(configs, String(kind), () => []).push(toConfig(raw));
    }
  }

  const byKey = new Map<string, MeshService>();
  for (const o of kube.services) {
    const s = serviceFromKube(o);
    if (s) byKey.set(s.key, s);
  }
  const endpoints = endpointsFromKube(kube, byKey);
  for (const s of byKey.values()) {
    if (!endpoints.has(s.key) && s.selector) {
      const eps = endpointsFromPods(s, kube.pods, kube.nodes);
      if (eps.length) endpoints.set(s.key, eps);
    }
  }
  for (const o of serviceEntries) {
    const r = servicesFromServiceEntry(o, kube.pods);
    for (const s of r.services) {
      // Two ServiceEntries with one host in one namespace: the oldest keeps it.
      const prev = byKey.get(s.key);
      if (
        prev &&
        (prev.registry === 'Kubernetes' || (prev.creationTimestamp ?? '') <= (s.creationTimestamp ?? ''))
      )
        continue;
      byKey.set(s.key, s);
      const eps = r.endpoints.get(s.key);
      if (eps) endpoints.set(s.key, eps);
      else endpoints.delete(s.key);
    }
  }

  const services = [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const sortedEndpoints = new Map<string, MeshEndpoint[]>();
  for (const key of [...endpoints.keys()].sort()) {
    const list = [...endpoints.get(key)!].sort((a, b) =>
      a.address < b.address
        ? -1
        : a.address > b.address
          ? 1
          : (a.podName ?? '').localeCompare(b.podName ?? ''),
    );
    if (list.length) sortedEndpoints.set(key, list);
  }
  const list = <S>(kind: string) => ((configs.get(kind) ?? []) as ConfigResource<S>[]).sort(byCreation);
  const snap: Omit<MeshSnapshot, 'version'> = {
    mesh,
    services,
    endpoints: sortedEndpoints,
    virtualServices: list('VirtualService'),
    destinationRules: list('DestinationRule'),
    sidecars: list('Sidecar'),
    gateways: list('Gateway'),
    peerAuthentications: list('PeerAuthentication'),
  };
  // Only when present, so snapshots without security policies keep their version.
  const authz = list('AuthorizationPolicy');
  if (authz.length) snap.authorizationPolicies = authz;
  const reqAuthn = list('RequestAuthentication');
  if (reqAuthn.length) snap.requestAuthentications = reqAuthn;
  return { ...snap, version: shortHash(canonicalJson(snap)) };
}
