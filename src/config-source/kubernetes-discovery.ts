/**
 * Which collections the Kubernetes source watches, found through API discovery:
 * EndpointSlices at discovery.k8s.io/v1 when served, else v1beta1 (Kubernetes < 1.21), and
 * every resource of the Istio API groups at the group's preferred version (absent groups,
 * i.e. CRDs not installed yet, are skipped and looked for again at the next resync).
 */

import type { ReflectorLogger } from './kubernetes-reflector.js';
import { KubeApiError, type KubeRest } from './kubernetes-rest.js';

export interface WatchedResource {
  /** Collection path across namespaces, e.g. `/apis/networking.istio.io/v1beta1/virtualservices`. */
  path: string;
  apiVersion: string;
  kind: string;
}

export const MESH_API_GROUPS = ['networking.istio.io', 'security.istio.io'] as const;

interface ApiGroup {
  versions?: Array<{ groupVersion: string; version: string }>;
  preferredVersion?: { groupVersion: string; version: string };
}

interface ResourceList {
  resources?: Array<{ name: string; kind: string; namespaced?: boolean; verbs?: string[] }>;
}

async function group(rest: KubeRest, name: string): Promise<ApiGroup | undefined> {
  try {
    return await rest.get<ApiGroup>(`/apis/${name}`);
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 404) return undefined;
    throw err;
  }
}

/** `discovery.k8s.io/v1` or `discovery.k8s.io/v1beta1`. */
export async function endpointSliceVersion(rest: KubeRest): Promise<string> {
  const g = await group(rest, 'discovery.k8s.io');
  const versions = new Set((g?.versions ?? []).map((v) => v.version));
  if (versions.has('v1')) return 'discovery.k8s.io/v1';
  if (versions.has('v1beta1')) return 'discovery.k8s.io/v1beta1';
  throw new Error('the apiserver serves no discovery.k8s.io EndpointSlice version (v1 or v1beta1)');
}

/** The core collections plus EndpointSlices at the version the apiserver serves. */
export async function coreResources(
  rest: KubeRest,
  opts: { nodes?: boolean; log?: Pick<ReflectorLogger, 'warn'> } = {},
): Promise<WatchedResource[]> {
  const slices = await endpointSliceVersion(rest);
  const out: WatchedResource[] = [
    { path: '/api/v1/namespaces', apiVersion: 'v1', kind: 'Namespace' },
    { path: '/api/v1/services', apiVersion: 'v1', kind: 'Service' },
    { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod' },
    { path: `/apis/${slices}/endpointslices`, apiVersion: slices, kind: 'EndpointSlice' },
  ];
  if (opts.nodes && (await canListNodes(rest, opts.log)))
    out.push({ path: '/api/v1/nodes', apiVersion: 'v1', kind: 'Node' });
  return out;
}

/**
 * Nodes only refine locality, so a controller whose RBAC predates the nodes rule (an upgrade
 * without re-applying config/) runs without them, saying why, rather than waiting forever on a
 * list it may not do.
 */
async function canListNodes(rest: KubeRest, log?: Pick<ReflectorLogger, 'warn'>): Promise<boolean> {
  try {
    await rest.get('/api/v1/nodes?limit=1');
    return true;
  } catch (err) {
    if (!(err instanceof KubeApiError) || err.code !== 403) return true; // transient: the reflector retries
    log?.warn('cannot list nodes (forbidden): locality comes from pod labels only; re-apply config/ RBAC', {
      error: err.message,
    });
    return false;
  }
}

/** Every list/watchable resource of the Istio groups, at each group's preferred version. */
export async function meshResources(rest: KubeRest): Promise<WatchedResource[]> {
  const out: WatchedResource[] = [];
  for (const name of MESH_API_GROUPS) {
    const g = await group(rest, name);
    const gv = g?.preferredVersion?.groupVersion ?? g?.versions?.[0]?.groupVersion;
    if (!gv) continue;
    const list = await rest.get<ResourceList>(`/apis/${gv}`);
    for (const r of list.resources ?? []) {
      if (r.name.includes('/')) continue; // subresources (status)
      if (r.verbs && !(r.verbs.includes('list') && r.verbs.includes('watch'))) continue;
      out.push({ path: `/apis/${gv}/${r.name}`, apiVersion: gv, kind: r.kind });
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}
