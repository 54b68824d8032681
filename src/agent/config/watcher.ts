/**
 * The sidecar agent's config watcher: finds its workload class (namespace + service account
 * + labels, as the controller computes it), watches its tables ConfigMap and the endpoint
 * shards the index names (each by name: the only way its Role lets it read them), and
 * hot-swaps the proxy's config on change: endpoints first, then tables, so new clusters find
 * their endpoints. A config the proxy rejects leaves the last good one in place; the
 * rejection is logged and reported.
 *
 * Reporting: after each apply the agent merge-patches its own key (the pod name) in
 * `isthmus-status-<class>`, a ConfigMap its Role lets it patch and nothing else. Chosen over
 * annotating its own Pod (would need `patch pods`, which cannot be limited to one pod and
 * would let any sidecar relabel its neighbours) and over the controller scraping 15020 (needs
 * pod-network reach and turns status into polling).
 */
import { readFileSync } from 'node:fs';
import type { ReflectorLogger } from '../../config-source/kubernetes-reflector.js';
import { Reflector } from '../../config-source/kubernetes-reflector.js';
import {
  type KubeConfigLike,
  type KubeObject,
  KubeRest,
  restFromKubeConfig,
} from '../../config-source/kubernetes-rest.js';
import {
  type AppliedStatus,
  assembleEndpoints,
  classId,
  type EndpointIndex,
  readShardConfigMap,
  readTablesConfigMap,
  type ShardData,
  shardsOf,
  statusConfigMapName,
  tablesConfigMapName,
} from '../../publish/index.js';
import { workloadsFromPods } from '../../registry/workloads.js';

type ApplyOutcome =
  | { ok: true; version: string }
  | { ok: false; version: string; errors: Array<{ path: string; message: string }> };

/** What the watcher drives: SidecarProxy fits. */
export interface ConfigTarget {
  applyTables(json: unknown): Promise<ApplyOutcome> | ApplyOutcome;
  applyEndpoints(json: unknown): Promise<ApplyOutcome> | ApplyOutcome;
}

export interface ConfigWatcherOptions {
  /** Either a kubeconfig (client-node KubeConfig), or server + token(File) + ca(File). */
  kubeConfig?: KubeConfigLike;
  server?: string;
  token?: string;
  /** Projected service-account token file (re-read, so rotation works). */
  tokenFile?: string;
  ca?: string | Buffer;
  caFile?: string;
  namespace: string;
  podName: string;
  /** Pod labels (downward API); read from the Pod when absent (needs `get pods`). */
  labels?: Record<string, string>;
  /** Service account; default: from the token's `sub` claim, else the Pod. */
  serviceAccount?: string;
  proxy: ConfigTarget;
  /** Patch the status ConfigMap after applies (default true). */
  report?: boolean;
  resyncMs?: number;
  backoffMaxMs?: number;
  log?: ReflectorLogger;
  /** Called after each apply attempt that changed anything. */
  onApplied?: (s: AppliedStatus) => void;
}

export interface ConfigWatcher {
  readonly classId: string;
  /** Versions applied last (undefined before the first config). */
  status(): AppliedStatus | undefined;
  /** Resolves after the first config was applied. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/** `key="value"` lines of a downward API labels file. */
export function parseDownwardLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([^=]+)="(.*)"$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  return out;
}

function saFromToken(token: string | undefined): string | undefined {
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: string }).sub;
    const m = /^system:serviceaccount:[^:]+:(.+)$/.exec(sub ?? '');
    return m?.[1];
  } catch {
    return undefined;
  }
}

const noopLog: ReflectorLogger = { info: () => 0, warn: () => 0, debug: () => 0 };

export async function startConfigWatcher(opts: ConfigWatcherOptions): Promise<ConfigWatcher> {
  const log = opts.log ?? noopLog;
  const rest = opts.kubeConfig
    ? restFromKubeConfig(opts.kubeConfig, 'isthmus-agent')
    : new KubeRest({
        server: opts.server ?? '',
        ...(opts.token ? { token: opts.token } : {}),
        ...(opts.tokenFile ? { tokenFile: opts.tokenFile } : {}),
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.caFile ? { caFile: opts.caFile } : {}),
        userAgent: 'isthmus-agent',
      });
  const token = opts.token ?? (opts.tokenFile ? readFileSync(opts.tokenFile, 'utf8').trim() : undefined);
  let labels = opts.labels;
  let serviceAccount = opts.serviceAccount ?? saFromToken(token);
  if (!labels || !serviceAccount) {
    const pod = await rest.get<KubeObject>(`/api/v1/namespaces/${opts.namespace}/pods/${opts.podName}`);
    labels ??= pod.metadata?.labels ?? {};
    serviceAccount ??=
      (pod.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName ?? 'default';
  }
  const [workload] = workloadsFromPods([
    {
      kind: 'Pod',
      metadata: { name: opts.podName, namespace: opts.namespace, labels },
      spec: { serviceAccountName: serviceAccount, containers: [{ name: 'app' }] },
    },
  ]);
  const id = classId(workload ?? { namespace: opts.namespace, labels: labels ?? {}, serviceAccount });
  const tablesName = tablesConfigMapName(id);
  const statusPath = `/api/v1/namespaces/${opts.namespace}/configmaps/${statusConfigMapName(id)}`;
  log.info('config watcher starting', { class: id, configMap: `${opts.namespace}/${tablesName}` });

  let closed = false;
  let applied: AppliedStatus | undefined;
  let appliedTables = '';
  let appliedEndpoints = '';
  let rejected: { version: string; error: string } | undefined;
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });
  const shards = new Map<string, Reflector>();
  let shardNamespace = '';

  const reflector = (namespace: string, name: string) =>
    new Reflector({
      rest,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      fieldSelector: `metadata.name=${name}`,
      ...(opts.resyncMs !== undefined ? { resyncMs: opts.resyncMs } : {}),
      ...(opts.backoffMaxMs !== undefined ? { backoffMaxMs: opts.backoffMaxMs } : {}),
      log,
      onChange: () => trigger(),
    });

  // Status reporting: coalesced, retried with backoff (the ConfigMap may not exist yet).
  let reportTimer: NodeJS.Timeout | undefined;
  let reportDelay = 0;
  let reporting = false;
  const report = () => {
    if (opts.report === false || closed || reporting) return;
    clearTimeout(reportTimer);
    reportTimer = setTimeout(async () => {
      const s = applied;
      if (!s || closed) return;
      reporting = true;
      try {
        await rest.mergePatch(statusPath, { data: { [opts.podName]: JSON.stringify(s) } });
        reportDelay = 0;
        reporting = false;
        if (applied !== s) report();
      } catch (err) {
        reporting = false;
        reportDelay = Math.min(Math.max(reportDelay * 2, 250), 10_000);
        log.debug('config status report failed; retrying', { error: String(err), retryMs: reportDelay });
        reportTimer = setTimeout(report, reportDelay);
      }
    }, reportDelay);
  };

  const syncShards = (index: EndpointIndex): boolean => {
    const wanted = new Set(shardsOf(index));
    if (index.namespace !== shardNamespace) {
      for (const r of shards.values()) void r.stop();
      shards.clear();
      shardNamespace = index.namespace;
    }
    for (const name of wanted)
      if (!shards.has(name)) {
        const r = reflector(index.namespace, name);
        shards.set(name, r);
        void r.start();
      }
    return [...wanted].every((n) => shards.get(n)?.hasSynced);
  };

  const dropUnused = (index: EndpointIndex) => {
    const wanted = new Set(shardsOf(index));
    for (const [name, r] of shards)
      if (!wanted.has(name)) {
        shards.delete(name);
        void r.stop();
      }
  };

  const handle = async () => {
    const cm = tables.list()[0];
    if (!cm) return; // not published yet (or deleted: keep the last config)
    const parsed = readTablesConfigMap(cm);
    if (!parsed.ok) {
      const version = cm.metadata?.resourceVersion ?? '';
      if (rejected?.version !== version) {
        rejected = { version, error: parsed.error };
        log.warn('published config unreadable; keeping the last good one', { error: parsed.error });
        if (applied) {
          applied = { ...applied, rejected: version, error: parsed.error };
          report();
        }
      }
      return;
    }
    const { tables: doc, index } = parsed.value;
    if (!syncShards(index)) return; // a shard's first list will trigger again
    const data = new Map<string, ShardData>();
    for (const [name, r] of shards) {
      const shardCm = r.list()[0];
      if (!shardCm) continue;
      const s = readShardConfigMap(shardCm);
      if (s.ok) data.set(name, s.value);
    }
    const { table, missing } = assembleEndpoints(index, data);
    if (missing.length) {
      log.debug('waiting for endpoint shards', { missing: missing.length });
      return;
    }
    const tablesVersion = String((doc as { version?: unknown }).version ?? '');
    let changed = false;
    let error: string | undefined;
    if (table.version !== appliedEndpoints) {
      const r = await opts.proxy.applyEndpoints(table);
      if (r.ok) appliedEndpoints = table.version;
      else error = r.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
      changed = true;
    }
    if (tablesVersion !== appliedTables && rejected?.version !== tablesVersion) {
      const r = await opts.proxy.applyTables(doc);
      if (r.ok) {
        appliedTables = tablesVersion;
        rejected = undefined;
      } else {
        error = r.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
        rejected = { version: tablesVersion, error };
        log.warn('tables rejected; keeping the last good config', { version: tablesVersion, error });
      }
      changed = true;
    }
    dropUnused(index);
    if (!changed) return;
    applied = {
      tables: appliedTables,
      endpoints: appliedEndpoints,
      at: new Date().toISOString(),
      ...(error ? { rejected: rejected?.version ?? table.version, error } : {}),
    };
    if (appliedTables) resolveReady();
    opts.onApplied?.(applied);
    report();
  };

  // Serialized, coalescing trigger: at most one handle() running and one queued.
  let running: Promise<void> | undefined;
  let again = false;
  const trigger = () => {
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = handle()
      .catch((err) => {
        log.warn('applying config failed', { error: String(err) });
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          trigger();
        }
      });
  };

  const tables = reflector(opts.namespace, tablesName);
  void tables.start();

  return {
    classId: id,
    ready,
    status: () => applied,
    async close() {
      closed = true;
      clearTimeout(reportTimer);
      await Promise.all([tables.stop(), ...[...shards.values()].map((r) => r.stop())]);
      await running;
      rest.close();
    },
  };
}
