/** Helpers for the reconcile/publish/agent tests against the real apiserver (envtest). */

import { join } from 'node:path';
import { KubeApiError, type KubeObject, type KubeRest } from '../../src/config-source/kubernetes-rest.js';
import { PROJECT_ROOT } from '../../src/util/paths.js';
import type { ControlPlane } from '../envtest/index.js';
import { eventually } from '../integration/controller.js';

const PLURALS: Record<string, string> = {
  Namespace: 'namespaces',
  ServiceAccount: 'serviceaccounts',
  Service: 'services',
  Pod: 'pods',
  ConfigMap: 'configmaps',
  EndpointSlice: 'endpointslices',
  VirtualService: 'virtualservices',
  DestinationRule: 'destinationrules',
  ServiceEntry: 'serviceentries',
  Sidecar: 'sidecars',
  Lease: 'leases',
  ClusterRole: 'clusterroles',
  ClusterRoleBinding: 'clusterrolebindings',
};

/** Kinds without a namespace. */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

export function pathOf(o: KubeObject, withName = true): string {
  const api = o.apiVersion ?? 'v1';
  const base = api.includes('/') ? `/apis/${api}` : `/api/${api}`;
  const plural = PLURALS[o.kind ?? ''];
  if (!plural) throw new Error(`no plural for ${o.kind}`);
  const ns = CLUSTER_SCOPED.has(o.kind ?? '') ? '' : `/namespaces/${o.metadata?.namespace ?? 'default'}`;
  return `${base}${ns}/${plural}${withName ? `/${o.metadata?.name}` : ''}`;
}

/** Create or replace (like kubectl apply for whole objects). */
export async function upsert(rest: KubeRest, o: KubeObject): Promise<KubeObject> {
  try {
    return await rest.create(pathOf(o, false), o);
  } catch (err) {
    if (!(err instanceof KubeApiError) || err.code !== 409) throw err;
    const cur = await rest.get<KubeObject>(pathOf(o));
    return rest.replace(pathOf(o), {
      ...o,
      metadata: { ...o.metadata, resourceVersion: cur.metadata?.resourceVersion },
    });
  }
}

export async function remove(rest: KubeRest, o: KubeObject): Promise<void> {
  try {
    await rest.delete(pathOf(o));
  } catch (err) {
    if (!(err instanceof KubeApiError) || err.code !== 404) throw err;
  }
}

/** A service-account token from the TokenRequest API (what kubelet projects into pods). */
export async function serviceAccountToken(rest: KubeRest, ns: string, sa: string): Promise<string> {
  const r = await rest.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  );
  return r.status.token;
}

/** CRDs installed and established; stale webhook configurations of other suites removed. */
export async function prepareCluster(cp: ControlPlane): Promise<void> {
  const crds = join(PROJECT_ROOT, 'crds');
  const applied = await cp.kubectl(['apply', '-f', crds]);
  if (applied.code !== 0) throw new Error(applied.stderr);
  const est = await cp.kubectl(['wait', '--for=condition=established', '--timeout=60s', '-f', crds]);
  if (est.code !== 0) throw new Error(est.stderr);
  // The webhook suite leaves its (failurePolicy: Fail) configurations pointing at a stopped
  // controller; they would refuse every mesh object created here.
  await cp.kubectl([
    'delete',
    'validatingwebhookconfiguration/isthmus-validator',
    'mutatingwebhookconfiguration/isthmus-sidecar-injector',
    '--ignore-not-found',
  ]);
}

export const pod = (
  ns: string,
  name: string,
  labels: Record<string, string>,
  sa = 'default',
): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: ns, labels },
  spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'example/app:1' }] },
});

export const service = (ns: string, name: string, port = 9080): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: 'http', port }] },
});

/** A hand-made EndpointSlice (no kubelet, so no pod IPs for the EndpointSlice controller). */
export const endpointSlice = (
  apiVersion: string,
  ns: string,
  name: string,
  service: string,
  eps: Array<{ address: string; port: number; pod: string }>,
): KubeObject => ({
  apiVersion,
  kind: 'EndpointSlice',
  metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  // One port per slice: each upstream listens on its own loopback port.
  ports: [{ name: 'http', port: eps[0]?.port ?? 9080, protocol: 'TCP' }],
  endpoints: eps.map((e) => ({
    addresses: [e.address],
    conditions: { ready: true },
    targetRef: { kind: 'Pod', namespace: ns, name: e.pod },
  })),
});

/** Polls until truthy (every 50 ms by default); the shared `eventually` with this suite's cadence. */
export const waitFor = <T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> => eventually(what, async () => fn(), timeoutMs, everyMs);

/** Pods of a service account can be created once its token Secret exists (1.20 admission). */
export async function waitForServiceAccount(rest: KubeRest, ns: string, sa: string): Promise<void> {
  await waitFor(`service account ${ns}/${sa} ready`, async () => {
    const o = await rest.get<{ secrets?: unknown[] }>(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}`);
    return (o.secrets?.length ?? 0) > 0;
  });
}
