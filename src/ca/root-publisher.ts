/**
 * Publishes the mesh root to workloads: ConfigMap `istio-ca-root-cert` (key `root-cert.pem`,
 * label `istio.io/config: "true"`) in each namespace, as istiod's namespace controller does.
 * Sidecars mount it to trust the CA's serving certificate and, later, their peers.
 * Idempotent; one namespace failing never stops the others.
 */
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { describeApiError, isApiError } from '../controller/kube.js';

export const ROOT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CONFIGMAP_KEY = 'root-cert.pem';
export const ROOT_CONFIGMAP_LABELS = { 'istio.io/config': 'true' } as const;

export interface PublishResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** Namespaces being deleted (the apiserver forbids new objects there). */
  skipped: string[];
  failed: Array<{ namespace: string; error: string }>;
}

const CONCURRENCY = 8;

/** Creates or updates the root ConfigMap in every namespace given; never throws. */
export async function publishRootCert(
  core: CoreV1Api,
  namespaces: Iterable<string>,
  rootCertPem: string,
): Promise<PublishResult> {
  const result: PublishResult = { created: [], updated: [], unchanged: [], skipped: [], failed: [] };
  const queue = [...new Set(namespaces)];
  const worker = async () => {
    for (let ns = queue.shift(); ns !== undefined; ns = queue.shift()) {
      try {
        const outcome = await publishOne(core, ns, rootCertPem);
        result[outcome].push(ns);
      } catch (err) {
        result.failed.push({ namespace: ns, error: describeApiError(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  return result;
}

type Outcome = 'created' | 'updated' | 'unchanged' | 'skipped';

async function publishOne(core: CoreV1Api, namespace: string, rootCertPem: string): Promise<Outcome> {
  for (let attempt = 0; attempt < 3; attempt++) {
    let existing: V1ConfigMap | undefined;
    try {
      existing = await core.readNamespacedConfigMap({ name: ROOT_CONFIGMAP, namespace });
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
    try {
      if (!existing) {
        await core.createNamespacedConfigMap({
          namespace,
          body: {
            metadata: { name: ROOT_CONFIGMAP, labels: { ...ROOT_CONFIGMAP_LABELS } },
            data: { [ROOT_CONFIGMAP_KEY]: rootCertPem },
          },
        });
        return 'created';
      }
      const labelled = existing.metadata?.labels?.['istio.io/config'] === 'true';
      if (existing.data?.[ROOT_CONFIGMAP_KEY] === rootCertPem && labelled) return 'unchanged';
      // Keep other keys and labels someone added; replace carries resourceVersion (409 on a race).
      existing.data = { ...existing.data, [ROOT_CONFIGMAP_KEY]: rootCertPem };
      existing.metadata = {
        ...existing.metadata,
        labels: { ...existing.metadata?.labels, ...ROOT_CONFIGMAP_LABELS },
      };
      await core.replaceNamespacedConfigMap({ name: ROOT_CONFIGMAP, namespace, body: existing });
      return 'updated';
    } catch (err) {
      if (isApiError(err, 409)) continue; // created or changed meanwhile: re-read
      if (isApiError(err, 403) && /being terminated/.test(describeApiError(err))) return 'skipped';
      if (isApiError(err, 404) && existing) continue; // deleted meanwhile
      throw err;
    }
  }
  throw new Error(`ConfigMap ${namespace}/${ROOT_CONFIGMAP} kept changing while being written`);
}

export interface RootSync {
  /** Lists namespaces and publishes once (also what the timer does). */
  syncNow(): Promise<PublishResult>;
  stop(): void;
}

/**
 * Keeps the root ConfigMap in every namespace by listing namespaces periodically (istiod
 * resyncs every 60 s too). A stop-gap until the controller's namespace informer calls
 * publishRootCert on namespace events; cheap (one list + one read per namespace).
 */
export function startRootSync(
  core: CoreV1Api,
  rootCertPem: () => string,
  opts: { intervalMs?: number; onResult?: (r: PublishResult) => void; onError?: (err: unknown) => void } = {},
): RootSync {
  let running: Promise<PublishResult> | undefined;
  const syncNow = () => {
    running ??= (async () => {
      const list = await core.listNamespace();
      const names = list.items
        .filter((n) => n.status?.phase !== 'Terminating')
        .map((n) => n.metadata?.name)
        .filter((n): n is string => !!n);
      return publishRootCert(core, names, rootCertPem());
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const tick = () =>
    syncNow().then(
      (r) => opts.onResult?.(r),
      (err) => opts.onError?.(err),
    );
  const timer = setInterval(tick, opts.intervalMs ?? 60_000);
  timer.unref();
  void tick();
  return { syncNow, stop: () => clearInterval(timer) };
}
