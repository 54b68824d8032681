/**
 * Workload identities from Pods: pods with the same namespace, labels and service account get
 * the same compiled tables, so they are one workload (never one entry per pod). Labels that
 * differ between replicas of one rollout (`pod-template-hash`, ...) are left out.
 */
import { arr, isObj, metaOf, obj, str } from './kube-objects.js';
import { nodeLocalities, podLocalityOf, workloadNameOf } from './kubernetes.js';
import type { Locality, WorkloadIdentity } from './types.js';

const PER_REVISION_LABELS = new Set([
  'pod-template-hash',
  'controller-revision-hash',
  'statefulset.kubernetes.io/pod-name',
]);

/** Pod annotations that change the compiled tables (local rate limits, src/authz/README.md). */
export const WORKLOAD_ANNOTATIONS = ['isthmus.io/local-rate-limit', 'isthmus.io/local-rate-limit-routes'];

export function workloadKey(
  w: Pick<WorkloadIdentity, 'namespace' | 'labels' | 'serviceAccount' | 'annotations'>,
): string {
  const labels = Object.keys(w.labels)
    .sort()
    .map((k) => `${k}=${w.labels[k]}`)
    .join(',');
  const base = `${w.namespace}|${w.serviceAccount}|${labels}`;
  if (w.annotations === undefined) return base;
  const annotations = Object.keys(w.annotations)
    .sort()
    .map((k) => `${k}=${w.annotations![k]}`)
    .join(',');
  return annotations ? `${base}|${annotations}` : base;
}

const localityId = (l: Locality | undefined) =>
  l ? `${l.region ?? ''}/${l.zone ?? ''}/${l.subzone ?? ''}` : '';

/** `workloadKey` plus the locality: what tells two compiled identities apart. */
export function workloadIdentityKey(w: WorkloadIdentity): string {
  return w.locality ? `${workloadKey(w)}|@${localityId(w.locality)}` : workloadKey(w);
}

/**
 * One identity per class. `nodes` (Node objects) give pods without an `istio-locality` label
 * their node's locality; a class whose pods run in different localities gets none.
 */
export function workloadsFromPods(
  objects: readonly unknown[],
  nodes: readonly unknown[] = [],
): WorkloadIdentity[] {
  const out = new Map<string, WorkloadIdentity>();
  const localities = nodeLocalities(nodes.filter(isObj));
  /** Class key -> locality id of its first pod, or null once two pods disagree. */
  const seen = new Map<string, string | null>();
  for (const o of objects) {
    if (!isObj(o) || o.kind !== 'Pod') continue;
    const meta = metaOf(o);
    const spec = obj(o.spec);
    // Pods without a sidecar (opted out) get no tables.
    if (meta.labels['sidecar.istio.io/inject'] === 'false') continue;
    if (arr(spec.containers).length === 0) continue;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(meta.labels)) if (!PER_REVISION_LABELS.has(k)) labels[k] = v;
    const w: WorkloadIdentity = {
      name: workloadNameOf(meta),
      namespace: meta.namespace,
      labels,
      serviceAccount: str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? 'default',
    };
    for (const k of WORKLOAD_ANNOTATIONS) {
      const v = meta.annotations[k];
      if (v === undefined) continue;
      w.annotations ??= {};
      w.annotations[k] = v;
    }
    const key = workloadKey(w);
    const locality = podLocalityOf(meta.labels, str(spec.nodeName), localities);
    const prev = seen.get(key);
    if (prev === undefined) {
      if (locality) w.locality = locality;
      out.set(key, w);
      seen.set(key, localityId(locality));
    } else if (prev !== null && prev !== localityId(locality)) {
      delete out.get(key)!.locality;
      seen.set(key, null);
    }
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, w]) => w);
}
