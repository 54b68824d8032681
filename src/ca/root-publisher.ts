/**
 * Publishes the mesh root to workloads: ConfigMap `istio-ca-root-cert` (key `root-cert.pem`,
 * label `istio.io/config: "true"`) in each namespace, as istiod's namespace controller does.
 * Sidecars mount it to trust the CA's serving certificate and, later, their peers.
 * Idempotent; one namespace failing never stops the others.
 */
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { Reflector, type ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import type { KubeObject, KubeRest } from '../config-source/kubernetes-rest.js';
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
  /** Publishes to every namespace once (also what the timer does). */
  syncNow(): Promise<PublishResult>;
  stop(): void;
}

/**
 * Keeps the root ConfigMap in every namespace by listing namespaces periodically: one list +
 * one read per namespace per pass. RootPublisher (below) is what the controller runs; this
 * remains for callers without a watch connection.
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

export interface RootPublisherOptions {
  /** Writes go through client-node (publishOne above); watches through `rest`. */
  core: CoreV1Api;
  rest: KubeRest;
  /** The PEM to publish, read at every pass (it changes when `cacerts` rotates). */
  rootCertPem: () => string;
  /** Only the leader writes (default: always). Call kick() when leadership is gained. */
  isLeader?: () => boolean;
  /**
   * Publish only into namespaces matching this label selector (meshConfig.discoverySelectors
   * in spirit; tests use it to stay inside their own namespaces). Default: every namespace.
   */
  namespaceLabelSelector?: string;
  /** Safety-net pass over every namespace against the watched state (default 60 s, istiod's). */
  resyncMs?: number;
  /** Full relist of both watches (default 300 s); watches resume on their own in between. */
  relistMs?: number;
  backoffMaxMs?: number;
  log?: ReflectorLogger;
}

export interface RootPublisherStats {
  passes: number;
  created: number;
  updated: number;
  failed: number;
  lastError?: string;
}

const nsName = (o: KubeObject) => o.metadata?.name ?? '';
const terminating = (o: KubeObject) =>
  (o as { status?: { phase?: string } }).status?.phase === 'Terminating' ||
  !!(o.metadata as { deletionTimestamp?: string } | undefined)?.deletionTimestamp;

/**
 * istiod's namespace controller: watches Namespaces and the `istio-ca-root-cert` ConfigMaps
 * (both through Reflector, which resumes after dropped watches and relists after 410 Gone),
 * and writes the ConfigMap into any namespace where it is missing, edited or stale — a new
 * namespace gets it as soon as its ADDED event arrives, a deleted ConfigMap is recreated on its
 * DELETED event. Comparing against the watched ConfigMaps costs no API call; only namespaces
 * that need a write cost one read + one write. A periodic pass (60 s) is the safety net.
 */
export class RootPublisher {
  readonly stats: RootPublisherStats = { passes: 0, created: 0, updated: 0, failed: 0 };
  private readonly namespaces: Reflector;
  private readonly configMaps: Reflector;
  private readonly pending = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly log: ReflectorLogger | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: RootPublisherOptions) {
    this.log = opts.log;
    const common = {
      rest: opts.rest,
      resyncMs: opts.relistMs ?? 300_000,
      ...(opts.backoffMaxMs ? { backoffMaxMs: opts.backoffMaxMs } : {}),
      ...(opts.log ? { log: opts.log } : {}),
      onChange: () => this.reconcile(),
    };
    this.namespaces = new Reflector({
      ...common,
      path: '/api/v1/namespaces',
      apiVersion: 'v1',
      kind: 'Namespace',
      ...(opts.namespaceLabelSelector ? { labelSelector: opts.namespaceLabelSelector } : {}),
    });
    this.configMaps = new Reflector({
      ...common,
      path: '/api/v1/configmaps',
      apiVersion: 'v1',
      kind: 'ConfigMap',
      fieldSelector: `metadata.name=${ROOT_CONFIGMAP}`,
      // Only what the comparison needs: a root PEM per namespace, not every key someone added.
      transform: (o) => ({
        metadata: {
          name: o.metadata?.name ?? '',
          namespace: o.metadata?.namespace ?? '',
          ...(o.metadata?.labels ? { labels: o.metadata.labels } : {}),
        },
        data: {
          [ROOT_CONFIGMAP_KEY]: (o.data as Record<string, string> | undefined)?.[ROOT_CONFIGMAP_KEY] ?? '',
        },
      }),
    });
  }

  /** Starts both watches; resolves once both listed (the first pass is queued by then). */
  async start(): Promise<void> {
    await Promise.all([this.namespaces.start(), this.configMaps.start()]);
    const every = this.opts.resyncMs ?? 60_000;
    this.timer = setInterval(() => this.reconcile(), every);
    this.timer.unref();
    this.reconcile();
  }

  /** Re-checks every namespace now (leadership gained, root rotated). */
  kick(): void {
    this.reconcile();
  }

  /** True once the Namespace watch has delivered `name`. */
  sees(name: string): boolean {
    return this.namespaces.store.has(`/${name}`);
  }

  /** Resolves when nothing is queued or being written (tests). */
  idle(): Promise<void> {
    if (!this.pending.size && !this.inFlight.size) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    await Promise.all([this.namespaces.stop(), this.configMaps.stop()]);
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Namespaces whose ConfigMap (as watched) is missing, unlabelled or holds another root. */
  private stale(root: string): string[] {
    const out: string[] = [];
    for (const ns of this.namespaces.store.values()) {
      const name = nsName(ns);
      if (!name || terminating(ns)) continue;
      const cm = this.configMaps.store.get(`${name}/${ROOT_CONFIGMAP}`);
      const data = (cm?.data as Record<string, string> | undefined)?.[ROOT_CONFIGMAP_KEY];
      if (data !== root || cm?.metadata?.labels?.['istio.io/config'] !== 'true') out.push(name);
    }
    return out;
  }

  private reconcile(): void {
    if (this.stopped || !this.namespaces.hasSynced || !this.configMaps.hasSynced) return;
    if (this.opts.isLeader && !this.opts.isLeader()) return;
    this.stats.passes++;
    const root = this.opts.rootCertPem();
    for (const ns of this.stale(root)) {
      if (this.inFlight.has(ns)) continue; // its write re-checks when done
      if (this.pending.has(ns)) continue;
      this.pending.add(ns);
      if (this.inFlight.size < CONCURRENCY) void this.drain();
    }
  }

  private async drain(): Promise<void> {
    for (const ns of this.pending) {
      if (this.stopped || this.inFlight.size >= CONCURRENCY) return;
      this.pending.delete(ns);
      this.inFlight.add(ns);
      const root = this.opts.rootCertPem();
      try {
        const outcome = await publishOne(this.opts.core, ns, root);
        if (outcome === 'created') this.stats.created++;
        if (outcome === 'updated') this.stats.updated++;
        if (outcome === 'created' || outcome === 'updated')
          this.log?.info(`${outcome} ${ROOT_CONFIGMAP}`, { namespace: ns });
        this.failures = 0;
      } catch (err) {
        this.stats.failed++;
        this.stats.lastError = `${ns}: ${describeApiError(err)}`;
        this.log?.warn(`could not publish ${ROOT_CONFIGMAP}; will retry`, {
          namespace: ns,
          error: describeApiError(err),
        });
        this.retryLater();
      } finally {
        this.inFlight.delete(ns);
      }
      if (!this.pending.size && !this.inFlight.size) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** After a failed write: another pass with backoff (1 s .. 30 s), not at the next resync. */
  private retryLater(): void {
    if (this.retryTimer || this.stopped) return;
    this.failures++;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.failures - 1, 5));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.reconcile();
    }, delay);
    this.retryTimer.unref();
  }
}
