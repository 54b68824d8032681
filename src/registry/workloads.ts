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

export function workloadKey(w: Pick<WorkloadIdentity, 'namespace' | 'labels' | 'serviceAccount'>): string {
  const labels = Object.keys(w.labels)
    .sort()
    .map((k) => `${k}=${w.labels[k]}`)
    .join(',');
  return `${w.namespace}|${w.serviceAccount}|${labels}`;
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
    const key = workloadKey(w);
    if (!out.has(key)) out.set(key, w);
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, w]) => w);
}
