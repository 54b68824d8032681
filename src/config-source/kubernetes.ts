/**
 * The cluster as a ConfigSource: reflectors (list + resumable watch, see
 * kubernetes-reflector.ts) on Namespaces, Services, EndpointSlices (v1, else v1beta1), Pods,
 * optionally Nodes, and every Istio resource the apiserver serves. Changes are coalesced
 * (debounce ~100 ms, bounded by maxDelayMs under a steady stream) into one MeshSnapshot.
 * Invalid mesh objects are skipped (their last valid version kept) exactly as in local mode.
 * Besides the snapshot, each event carries the workload classes of the pods (what the
 * publisher publishes for).
 *
 * Istio's mesh config, ConfigMap `istio` (key `mesh`) of the root namespace, is watched too (one
 * object: a field selector on its name, in that namespace only) and parsed by mesh-config.ts:
 * when it exists, its `outboundTrafficPolicy` and access log settings win over `opts.mesh`; a
 * malformed one is logged (and listed as rejected) naming the field, the last good one stays.
 */

import { DEFAULT_ROOT_NAMESPACE } from '../api/mesh.js';
import { NODE_LOCALITY_LABELS } from '../registry/kubernetes.js';
import { buildSnapshot } from '../registry/snapshot.js';
import type { MeshSettings, MeshSnapshot, WorkloadIdentity } from '../registry/types.js';
import { workloadIdentityKey, workloadsFromPods } from '../registry/workloads.js';
import { coreResources, meshResources, type WatchedResource } from './kubernetes-discovery.js';
import {
  type Reflector,
  Reflector as ReflectorImpl,
  type ReflectorLogger,
  stripManagedFields,
} from './kubernetes-reflector.js';
import { KubeApiError, type KubeObject, type KubeRest } from './kubernetes-rest.js';
import {
  MESH_CONFIGMAP,
  MESH_CONFIGMAP_KEY,
  type MeshConfigSettings,
  parseMeshConfig,
} from './mesh-config.js';
import type { ConfigSource, RejectedDocument, SnapshotEvent } from './types.js';
import { acceptDocuments } from './validate.js';

export interface KubernetesSourceOptions {
  rest: KubeRest;
  mesh?: Partial<MeshSettings>;
  /** Quiet period before a snapshot is built (default 100 ms, Istio's push debounce). */
  debounceMs?: number;
  /** Upper bound on the delay under a continuous stream of changes (default 1 s). */
  maxDelayMs?: number;
  /** Full relist interval of every reflector; also re-runs discovery (default 300 s). */
  resyncMs?: number;
  /**
   * Watch Nodes for locality (pods without `istio-locality` get their node's topology labels;
   * needs cluster-wide get/list/watch on nodes). Default true.
   */
  nodes?: boolean;
  backoffMaxMs?: number;
  /**
   * Watch the mesh config ConfigMap `istio` in the root namespace (needs get/list/watch on
   * configmaps there). Default true.
   */
  meshConfig?: boolean;
  log?: ReflectorLogger;
}

export interface ClusterSnapshotEvent extends SnapshotEvent {
  /** Workload classes of the pods with a sidecar (see registry/workloads.ts). */
  workloads: WorkloadIdentity[];
  /** Namespaces that exist. */
  namespaces: string[];
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Keeps only what the registry reads: pods are most of the memory of a big cluster. */
function trim(o: KubeObject): KubeObject {
  const x = stripManagedFields(o);
  const ann = x.metadata?.annotations;
  if (ann && LAST_APPLIED in ann) {
    const { [LAST_APPLIED]: _drop, ...rest } = ann;
    x.metadata = { ...x.metadata, annotations: rest };
  }
  if (x.kind === 'Node') {
    // Only the topology labels matter (locality); status heartbeats and the rest are dropped.
    const labels: Record<string, string> = {};
    for (const k of NODE_LOCALITY_LABELS) {
      const v = x.metadata?.labels?.[k];
      if (v !== undefined) labels[k] = v;
    }
    return {
      apiVersion: x.apiVersion,
      kind: x.kind,
      metadata: { name: x.metadata?.name, resourceVersion: x.metadata?.resourceVersion, labels },
    } as KubeObject;
  }
  if (x.kind !== 'Pod') return x;
  const spec = (x.spec ?? {}) as Record<string, unknown>;
  const status = (x.status ?? {}) as Record<string, unknown>;
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  return {
    apiVersion: x.apiVersion,
    kind: x.kind,
    metadata: x.metadata,
    spec: {
      serviceAccountName: spec.serviceAccountName,
      serviceAccount: spec.serviceAccount,
      nodeName: spec.nodeName,
      containers: containers.map((c: { name?: string; ports?: unknown }) => ({
        name: c.name,
        ports: c.ports,
      })),
    },
    status: {
      phase: status.phase,
      podIP: status.podIP,
      podIPs: status.podIPs,
      conditions: conditions.filter((c: { type?: string }) => c.type === 'Ready'),
    },
  };
}

/** Pods that finished (Succeeded/Failed) or are being deleted need no config. */
function isRunnable(pod: KubeObject): boolean {
  const phase = (pod.status as { phase?: string } | undefined)?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && !pod.metadata?.deletionTimestamp;
}

export class KubernetesSource implements ConfigSource {
  private readonly reflectors = new Map<string, Reflector>();
  private readonly listeners = new Set<(e: ClusterSnapshotEvent) => void>();
  private readonly lastGood = new Map<string, unknown>();
  private last: ClusterSnapshotEvent | undefined;
  private lastKey = '';
  private timer: NodeJS.Timeout | undefined;
  private firstDirtyAt = 0;
  private started = false;
  private closed = false;
  private discoveryTimer: NodeJS.Timeout | undefined;
  /** Mesh config: the resourceVersion last parsed, its outcome, and the last good settings. */
  private meshConfigSeen: string | undefined;
  private meshConfigRejected: RejectedDocument | undefined;
  private meshConfigGood: MeshConfigSettings | undefined;
  /** Snapshots built (for tests and metrics). */
  builds = 0;

  constructor(private readonly opts: KubernetesSourceOptions) {}

  async start(): Promise<ClusterSnapshotEvent> {
    const resources = [
      ...(await coreResources(this.opts.rest, {
        nodes: this.opts.nodes ?? true,
        ...(this.opts.log ? { log: this.opts.log } : {}),
      })),
      ...(await meshResources(this.opts.rest)),
    ];
    if ((this.opts.meshConfig ?? true) && (await this.canReadMeshConfig()))
      resources.push(this.meshConfigResource());
    await Promise.all(resources.map((r) => this.watch(r)));
    this.started = true;
    const resync = this.opts.resyncMs ?? 300_000;
    if (resync > 0) {
      this.discoveryTimer = setInterval(() => void this.rediscover(), resync);
      this.discoveryTimer.unref();
    }
    return this.build(true)!;
  }

  current(): MeshSnapshot | undefined {
    return this.last?.snapshot;
  }

  /** The last event (snapshot, rejected documents, workloads). */
  currentEvent(): ClusterSnapshotEvent | undefined {
    return this.last;
  }

  /** The stored objects (as watched, trimmed) whose kind is in `kinds`: the controller's status writer. */
  objectsOf(kinds: ReadonlySet<string>): KubeObject[] {
    const out: KubeObject[] = [];
    for (const r of this.reflectors.values())
      for (const o of r.store.values()) if (kinds.has(o.kind ?? '')) out.push(o);
    return out;
  }

  onSnapshot(listener: (e: ClusterSnapshotEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Watched collections and their reflector statistics. */
  status(): Array<{ path: string; objects: number; synced: boolean } & Reflector['stats']> {
    return [...this.reflectors.values()].map((r) => ({
      path: r.opts.path,
      objects: r.store.size,
      synced: r.hasSynced,
      ...r.stats,
    }));
  }

  /** Relists every collection now (normally done every resyncMs). */
  resync(): void {
    for (const r of this.reflectors.values()) r.resync();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.discoveryTimer);
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
  }

  private get rootNamespace(): string {
    return this.opts.mesh?.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  }

  private meshConfigResource(): WatchedResource & { fieldSelector: string } {
    return {
      path: `/api/v1/namespaces/${this.rootNamespace}/configmaps`,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      fieldSelector: `metadata.name=${MESH_CONFIGMAP}`,
    };
  }

  /** False (with a warning) when RBAC forbids it: the mesh config then stays at its defaults. */
  private async canReadMeshConfig(): Promise<boolean> {
    const r = this.meshConfigResource();
    try {
      await this.opts.rest.get(`${r.path}?fieldSelector=${encodeURIComponent(r.fieldSelector)}&limit=1`);
      return true;
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 403) return true; // transient: the reflector retries
      this.opts.log?.warn(
        `cannot read ConfigMap ${this.rootNamespace}/${MESH_CONFIGMAP} (forbidden): mesh config stays at its defaults; re-apply config/ RBAC`,
        { error: err.message },
      );
      return false;
    }
  }

  /**
   * The mesh settings: `opts.mesh`, overridden by the mesh config ConfigMap when it exists.
   * Parsed once per resourceVersion; a malformed version keeps the last good settings.
   */
  private meshSettings(): Partial<MeshSettings> {
    const r = this.reflectors.get(this.meshConfigResource().path);
    const cm = r?.store.get(`${this.rootNamespace}/${MESH_CONFIGMAP}`);
    const source = `ConfigMap ${this.rootNamespace}/${MESH_CONFIGMAP}`;
    const rv = cm ? (cm.metadata?.resourceVersion ?? '') : undefined;
    if (rv !== this.meshConfigSeen) {
      this.meshConfigSeen = rv;
      this.meshConfigRejected = undefined;
      if (cm === undefined) this.meshConfigGood = undefined;
      else {
        const data = (cm as { data?: Record<string, string> }).data;
        const parsed = parseMeshConfig(data?.[MESH_CONFIGMAP_KEY]);
        if (parsed.ok) {
          this.meshConfigGood = parsed.settings;
          this.opts.log?.info('mesh config applied', { source, ...parsed.settings });
        } else {
          const messages = parsed.errors.map((e) => `${MESH_CONFIGMAP_KEY}: ${e}`);
          this.meshConfigRejected = { source, messages, keptPrevious: this.meshConfigGood !== undefined };
          this.opts.log?.warn(
            `mesh config ${source} rejected (${messages.join('; ')}); keeping the ${
              this.meshConfigGood ? 'last good mesh config' : 'default mesh settings'
            }`,
          );
        }
      }
    }
    return this.meshConfigGood ? { ...this.opts.mesh, ...this.meshConfigGood } : (this.opts.mesh ?? {});
  }

  private async watch(r: WatchedResource & { fieldSelector?: string }): Promise<void> {
    if (this.reflectors.has(r.path)) return;
    const reflector = new ReflectorImpl({
      rest: this.opts.rest,
      path: r.path,
      apiVersion: r.apiVersion,
      kind: r.kind,
      ...(r.fieldSelector ? { fieldSelector: r.fieldSelector } : {}),
      transform: trim,
      resyncMs: this.opts.resyncMs ?? 300_000,
      ...(this.opts.backoffMaxMs ? { backoffMaxMs: this.opts.backoffMaxMs } : {}),
      ...(this.opts.log ? { log: this.opts.log } : {}),
      onChange: r.kind === 'Node' ? (x) => this.nodesChanged(x) : () => this.schedule(),
    });
    this.reflectors.set(r.path, reflector);
    await reflector.start();
  }

  private async rediscover(): Promise<void> {
    try {
      for (const r of await meshResources(this.opts.rest)) await this.watch(r);
    } catch (err) {
      this.opts.log?.warn('API discovery failed; keeping the current watches', { error: String(err) });
    }
  }

  private nodesKey = '';

  /** Node updates are mostly status heartbeats: rebuild only when some node's locality labels changed. */
  private nodesChanged(r: Reflector): void {
    const parts: string[] = [];
    for (const n of r.store.values())
      parts.push(`${n.metadata?.name}=${JSON.stringify(n.metadata?.labels ?? {})}`);
    const key = parts.sort().join('\n');
    if (key === this.nodesKey) return;
    this.nodesKey = key;
    this.schedule();
  }

  private schedule(): void {
    if (!this.started || this.closed) return;
    const now = Date.now();
    if (!this.timer) this.firstDirtyAt = now;
    clearTimeout(this.timer);
    const debounce = this.opts.debounceMs ?? 100;
    const wait = Math.max(0, Math.min(debounce, this.firstDirtyAt + (this.opts.maxDelayMs ?? 1000) - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.build(false);
    }, wait);
  }

  /** Builds a snapshot from the stores; notifies listeners when anything that matters changed. */
  private build(force: boolean): ClusterSnapshotEvent | undefined {
    const objects: KubeObject[] = [];
    const namespaces: string[] = [];
    for (const r of this.reflectors.values())
      for (const o of r.store.values()) {
        if (o.kind === 'Namespace') namespaces.push(o.metadata?.name ?? '');
        else if (o.kind !== 'ConfigMap') objects.push(o);
      }
    const docs = objects.map((object) => ({
      source: `${object.kind} ${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`,
      object,
    }));
    const root = this.opts.mesh?.rootNamespace;
    const accepted = acceptDocuments(docs, this.lastGood, root);
    const snapshot = buildSnapshot(accepted.objects, this.meshSettings());
    if (this.meshConfigRejected) accepted.rejected.push(this.meshConfigRejected);
    const pods = objects.filter((o) => o.kind === 'Pod' && isRunnable(o));
    const workloads = workloadsFromPods(
      pods,
      objects.filter((o) => o.kind === 'Node'),
    );
    namespaces.sort();
    const key = [
      snapshot.version,
      JSON.stringify(accepted.rejected),
      workloads.map(workloadIdentityKey).join(';'),
      namespaces.join(','),
    ].join('\n');
    this.builds++;
    if (!force && key === this.lastKey) return undefined;
    this.lastKey = key;
    const e: ClusterSnapshotEvent = { snapshot, rejected: accepted.rejected, workloads, namespaces };
    this.last = e;
    if (!force) for (const l of this.listeners) l(e);
    return e;
  }
}
