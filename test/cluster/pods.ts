// Helpers the scenarios use to look at real pods: listing, waiting, reading a pod's network
// namespace from the node, and running a client inside the cluster.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { sleep } from '../envtest/process.js';
import type { Cluster } from './cluster.js';
import { runOk } from './exec.js';
import { REPO_ROOT } from './images.js';

export async function listPods(
  cluster: Cluster,
  namespace: string,
  labelSelector?: string,
): Promise<V1Pod[]> {
  const core = cluster.controlPlane.kubeConfig.makeApiClient(CoreV1Api);
  return (await core.listNamespacedPod({ namespace, ...(labelSelector ? { labelSelector } : {}) })).items;
}

/** Polls the namespace's pods until `done(pods)` holds; the error carries `describe()` of the last view. */
export async function waitForPods(
  cluster: Cluster,
  namespace: string,
  what: string,
  done: (pods: V1Pod[]) => boolean,
  timeoutMs = 120_000,
): Promise<V1Pod[]> {
  const deadline = Date.now() + timeoutMs;
  let pods: V1Pod[] = [];
  while (Date.now() < deadline) {
    pods = await listPods(cluster, namespace).catch(() => pods);
    if (pods.length > 0 && done(pods)) return pods;
    await sleep(500);
  }
  const describe = await cluster.kubectl(['-n', namespace, 'describe', 'pods']);
  throw new Error(
    `timed out waiting for ${what} in ${namespace}:\n${summarize(pods)}\n${describe.stdout.slice(-4000)}`,
  );
}

export function summarize(pods: V1Pod[]): string {
  return pods
    .map((p) => {
      const containers = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]
        .map(
          (c) =>
            `${c.name}:${c.state?.running ? 'running' : c.state?.terminated ? `exited(${c.state.terminated.exitCode})` : (c.state?.waiting?.reason ?? '?')}${c.ready ? '+ready' : ''}`,
        )
        .join(',');
      return `${p.metadata?.name} ${p.status?.phase} [${containers}]`;
    })
    .join('\n');
}

export const isReady = (p: V1Pod): boolean =>
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** PID (on the node) of a running container of the pod: its network namespace is the pod's. */
export async function containerPid(cluster: Cluster, pod: V1Pod, container: string): Promise<number> {
  const status = (pod.status?.containerStatuses ?? []).find((c) => c.name === container);
  const id = status?.containerID?.replace(/^containerd:\/\//, '');
  if (!id || !status?.state?.running)
    throw new Error(`container ${container} of ${pod.metadata?.name} is not running`);
  const out = await cluster.containerd.ctr(['tasks', 'ls']);
  const line = out.split('\n').find((l) => l.startsWith(id));
  const pid = Number(line?.split(/\s+/)[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no task for container ${id}`);
  return pid;
}

/** `iptables-save -t nat` inside the pod's network namespace. */
export async function podNatTable(cluster: Cluster, pod: V1Pod, container: string): Promise<string> {
  const pid = await containerPid(cluster, pod, container);
  return runOk('nsenter', ['-t', String(pid), '-n', 'iptables-save', '-t', 'nat']);
}

export function bookinfoManifest(): string {
  return readFileSync(join(REPO_ROOT, 'examples', 'bookinfo', 'k8s', 'bookinfo.yaml'), 'utf8');
}

/** A long-running pod with node in it (the bookinfo image), to send requests from. */
export function clientPod(name: string, image: string, labels: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name, ...labels } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'client',
          image,
          imagePullPolicy: 'IfNotPresent',
          args: ['-e', 'setInterval(() => {}, 1 << 30)'],
          securityContext: { runAsUser: 1000, runAsGroup: 1000 },
        },
      ],
    },
  });
}

export interface LoadResult {
  total: number;
  statuses: Record<string, number>;
  versions: Record<string, number>;
  errors: string[];
}

/**
 * Sends `count` GETs to `url` from inside `pod` (a fresh connection each, so kube-proxy spreads
 * them) and counts status codes and the reviews version in the answers (productpage's `reviewsVersion`,
 * reviews' `version`).
 */
export async function loadFromPod(
  cluster: Cluster,
  namespace: string,
  pod: string,
  url: string,
  count: number,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const script = `
const out = { total: 0, statuses: {}, versions: {}, errors: [] };
(async () => {
  for (let i = 0; i < ${count}; i++) {
    out.total++;
    try {
      const res = await fetch(${JSON.stringify(url)}, { headers: { connection: 'close', ...${JSON.stringify(headers)} }, signal: AbortSignal.timeout(15000) });
      out.statuses[res.status] = (out.statuses[res.status] || 0) + 1;
      const body = await res.json().catch(() => ({}));
      const v = body.reviewsVersion || body.version || 'none';
      out.versions[v] = (out.versions[v] || 0) + 1;
    } catch (err) {
      out.statuses.error = (out.statuses.error || 0) + 1;
      if (out.errors.length < 5) out.errors.push(String(err && err.cause ? err.cause : err));
    }
  }
  process.stdout.write(JSON.stringify(out));
})();`;
  const stdout = await cluster.kubectlOk(['-n', namespace, 'exec', pod, '--', 'node', '-e', script], {
    timeoutMs: 180_000,
  });
  return JSON.parse(stdout) as LoadResult;
}
