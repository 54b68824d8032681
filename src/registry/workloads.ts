/**
 * Workload identities from Pods: pods with the same namespace, labels and service account get
 * the same compiled tables, so they are one workload (never one entry per pod). Labels that
 * differ between replicas of one rollout (`pod-template-hash`, ...) are left out.
 */
import { arr, isObj, metaOf, obj, str } from './kube-objects.js';
import { workloadNameOf } from './kubernetes.js';
import type { WorkloadIdentity } from './types.js';

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

export function workloadsFromPods(objects: readonly unknown[]): WorkloadIdentity[] {
  const out = new Map<string, WorkloadIdentity>();
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
    if (!out.has(key)) out.set(key, w);
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, w]) => w);
}
