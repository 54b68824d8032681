/**
 * The publisher: writes a PublishPlan into the cluster. Never builds config (plan.ts does).
 *  - Debounced (~100 ms): a burst of publish() calls is one write pass.
 *  - A ConfigMap is written only when its content hash (annotation) differs from the last
 *    one written; hashes of existing ConfigMaps are loaded at start and on leadership gain.
 *  - Order of a pass, so a sidecar never sees a reference to something it cannot read yet:
 *    Roles (old + new names) -> endpoint shards -> tables -> status ConfigMaps -> delete
 *    vanished ConfigMaps -> Roles (new names only) -> delete Roles of emptied namespaces.
 *  - Only the leader writes: `isLeader` is checked before each pass; a replica that becomes
 *    leader calls `resync()` (reload what exists, then write the latest plan).
 *  - A failed pass is retried with backoff; unchanged parts are skipped on the retry.
 */
import type { ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import {
  KubeApiError,
  type KubeList,
  type KubeObject,
  type KubeRest,
} from '../config-source/kubernetes-rest.js';
import { canonicalJson, shortHash } from '../registry/hash.js';
import { SerialPass } from '../util/serial-pass.js';
import {
  CONFIG_LABEL,
  CONTENT_HASH,
  ENDPOINTS_ROLE,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  PUBLISHED_AT,
  SIDECAR_ROLE,
  scopedEndpointsRole,
  scopedShardConfigMapName,
  statusConfigMapName,
  tablesConfigMapName,
} from './format.js';
import { type ClassResult, type DesiredConfigMap, type PublishPlan, planPublish } from './plan.js';
import { type RoleObjects, sidecarRole } from './rbac.js';

export interface PublisherOptions {
  rest: KubeRest;
  /** Controller namespace: endpoint shards and their Role live here. */
  namespace: string;
  debounceMs?: number;
  /** Parallel writes (default 16). */
  concurrency?: number;
  isLeader?: () => boolean;
  log?: ReflectorLogger;
  targetShardBytes?: number;
}

export interface PublisherStats {
  passes: number;
  writes: number;
  skipped: number;
  deletes: number;
  errors: number;
  lastPassMs: number;
  lastError?: string;
}

const noopLog: ReflectorLogger = { info: () => 0, warn: () => 0, debug: () => 0 };
const cmPath = (ns: string, name?: string) => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ''}`;
const rbacPath = (ns: string, kind: 'roles' | 'rolebindings', name?: string) =>
  `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/${kind}${name ? `/${name}` : ''}`;

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  let firstError: unknown;
  const worker = async () => {
    while (i < items.length) {
      const item = items[i++]!;
      try {
        await fn(item);
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (firstError) throw firstError;
}

export class Publisher {
  readonly stats: PublisherStats = { passes: 0, writes: 0, skipped: 0, deletes: 0, errors: 0, lastPassMs: 0 };
  /** `ns/name` -> content hash of every managed ConfigMap that exists (as far as we know). */
  private readonly written = new Map<string, string>();
  /** `ns/kind/name` -> hash of Roles/RoleBindings written. */
  private readonly rbacWritten = new Map<string, string>();
  /** Namespaces holding our sidecar Role. */
  private readonly roleNamespaces = new Set<string>();
  private latest: readonly ClassResult[] | undefined;
  private exportScopes: ReadonlyMap<string, readonly string[]> | undefined;
  private shardCount: number | undefined;
  private scopeShards = new Map<string, number>();
  /** Scoped endpoint Roles (`isthmus-sidecar-endpoints-<scope>`) in the controller namespace. */
  private readonly scopeRoles = new Set<string>();
  private needsReload = true;
  private readonly log: ReflectorLogger;
  private readonly passes = new SerialPass(() => this.pass());
  /** The plan of the last successful pass. */
  lastPlan: PublishPlan | undefined;

  constructor(private readonly opts: PublisherOptions) {
    this.log = opts.log ?? noopLog;
  }

  /**
   * Sets the desired state (all classes); written after the debounce. `exportScopes`: hosts
   * exported to only some namespaces (plan.ts `exportScopes`), whose endpoints go to shards
   * only those namespaces can read.
   */
  publish(classes: readonly ClassResult[], exportScopes?: ReadonlyMap<string, readonly string[]>): void {
    this.latest = classes;
    this.exportScopes = exportScopes;
    this.passes.schedule(this.opts.debounceMs ?? 100);
  }

  /** Forget what we believe exists and rewrite what differs (after gaining leadership). */
  resync(): void {
    this.needsReload = true;
    this.passes.schedule(0);
  }

  /** Resolves when no pass is pending or running. */
  idle(): Promise<void> {
    return this.passes.idle();
  }

  close(): void {
    this.passes.close();
  }

  private async pass(): Promise<void> {
    if (!this.latest || (this.opts.isLeader && !this.opts.isLeader())) {
      this.passes.succeeded();
      return;
    }
    const started = Date.now();
    try {
      if (this.needsReload) await this.reload();
      const plan = planPublish(this.latest, {
        namespace: this.opts.namespace,
        ...(this.shardCount ? { previousShards: this.shardCount } : {}),
        previousScopeShards: this.scopeShards,
        ...(this.exportScopes ? { exportScopes: this.exportScopes } : {}),
        ...(this.opts.targetShardBytes ? { targetShardBytes: this.opts.targetShardBytes } : {}),
      });
      for (const id of plan.oversized)
        this.log.warn('tables of a workload class exceed a ConfigMap', { class: id });
      await this.write(plan);
      this.shardCount = plan.shardCount;
      this.scopeShards = new Map([...plan.scopes].map(([k, v]) => [k, v.shards]));
      this.lastPlan = plan;
      this.passes.succeeded();
      this.stats.passes++;
      this.stats.lastPassMs = Date.now() - started;
    } catch (err) {
      this.stats.errors++;
      this.stats.lastError = err instanceof Error ? err.message : String(err);
      const retryMs = this.passes.backoff();
      this.needsReload ||= !(err instanceof KubeApiError) || err.code === 0;
      this.log.warn('publish failed; retrying', { error: this.stats.lastError, retryMs });
    }
  }

  /** Loads hashes of the managed ConfigMaps and the namespaces holding our Roles. */
  private async reload(): Promise<void> {
    const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY},${CONFIG_LABEL}`;
    const cms = await this.opts.rest.get<KubeList>('/api/v1/configmaps', { labelSelector: selector });
    this.written.clear();
    for (const cm of cms.items)
      this.written.set(
        `${cm.metadata?.namespace}/${cm.metadata?.name}`,
        cm.metadata?.annotations?.[CONTENT_HASH] ?? '',
      );
    const roles = await this.opts.rest.get<KubeList>('/apis/rbac.authorization.k8s.io/v1/roles', {
      labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}`,
    });
    this.roleNamespaces.clear();
    this.scopeRoles.clear();
    this.rbacWritten.clear();
    for (const r of roles.items) {
      if (r.metadata?.name === SIDECAR_ROLE && r.metadata.namespace)
        this.roleNamespaces.add(r.metadata.namespace);
      if (r.metadata?.namespace === this.opts.namespace && r.metadata.name?.startsWith(`${ENDPOINTS_ROLE}-`))
        this.scopeRoles.add(r.metadata.name);
    }
    this.needsReload = false;
  }

  private async put(path: string, collection: string, body: KubeObject): Promise<void> {
    try {
      await this.opts.rest.replace(path, body);
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 404) throw err;
      await this.opts.rest.create(collection, body);
    }
  }

  private async writeConfigMap(cm: DesiredConfigMap): Promise<void> {
    const key = `${cm.namespace}/${cm.name}`;
    if (this.written.get(key) === cm.hash) {
      this.stats.skipped++;
      return;
    }
    const body: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: cm.name,
        namespace: cm.namespace,
        labels: cm.labels,
        annotations: { ...cm.annotations, [CONTENT_HASH]: cm.hash, [PUBLISHED_AT]: new Date().toISOString() },
      },
      ...(cm.data ? { data: cm.data } : {}),
      ...(cm.binaryData ? { binaryData: cm.binaryData } : {}),
    };
    await this.put(cmPath(cm.namespace, cm.name), cmPath(cm.namespace), body);
    this.written.set(key, cm.hash);
    this.stats.writes++;
  }

  private async writeRbac(ns: string, kind: 'roles' | 'rolebindings', body: Record<string, unknown>) {
    const name = (body.metadata as { name: string }).name;
    const key = `${ns}/${kind}/${name}`;
    const hash = shortHash(canonicalJson(body));
    if (this.rbacWritten.get(key) === hash) return;
    await this.put(rbacPath(ns, kind, name), rbacPath(ns, kind), body as KubeObject);
    this.rbacWritten.set(key, hash);
    this.stats.writes++;
  }

  private async writeRoles(plan: PublishPlan, keepExisting: boolean): Promise<void> {
    const existing = (ns: string, prefix: string) =>
      keepExisting
        ? [...this.written.keys()]
            .filter((k) => k.startsWith(`${ns}/${prefix}`))
            .map((k) => k.slice(ns.length + 1))
        : [];
    const jobs: Array<() => Promise<void>> = [];
    for (const [ns, names] of plan.namespaces) {
      const read = [...names.read, ...existing(ns, tablesConfigMapName(''))];
      const patch = [...names.patch, ...existing(ns, statusConfigMapName(''))];
      const objs = sidecarRole(SIDECAR_ROLE, ns, read, patch, [ns]);
      jobs.push(async () => {
        await this.writeRbac(ns, 'roles', objs.role);
        await this.writeRbac(ns, 'rolebindings', objs.binding);
        this.roleNamespaces.add(ns);
      });
    }
    // Mesh-wide shards: every workload namespace. Shards of a scope: only its namespaces.
    const ctrl = this.opts.namespace;
    const publicShard = /^isthmus-endpoints-\d+$/;
    const scoped = new Set([...plan.scopes.values()].flatMap((s) => s.names));
    const shardNames = [
      ...plan.shards.map((s) => s.name).filter((n) => !scoped.has(n)),
      ...existing(ctrl, 'isthmus-endpoints-').filter((n) => publicShard.test(n)),
    ];
    const endpointRoles: RoleObjects[] = [
      sidecarRole(ENDPOINTS_ROLE, ctrl, shardNames, [], [...plan.namespaces.keys()]),
    ];
    for (const [scope, s] of plan.scopes) {
      const prefix = scopedShardConfigMapName(scope, 0).slice(0, -1);
      const names = [
        ...s.names,
        ...existing(ctrl, prefix).filter((n) => /^\d+$/.test(n.slice(prefix.length))),
      ];
      endpointRoles.push(sidecarRole(scopedEndpointsRole(scope), ctrl, names, [], s.namespaces));
    }
    for (const ep of endpointRoles)
      jobs.push(async () => {
        await this.writeRbac(ctrl, 'roles', ep.role);
        await this.writeRbac(ctrl, 'rolebindings', ep.binding);
        const name = (ep.role.metadata as { name: string }).name;
        if (name !== ENDPOINTS_ROLE) this.scopeRoles.add(name);
      });
    await pool(jobs, this.opts.concurrency ?? 16, (j) => j());
  }

  private async deleteIgnoringMissing(path: string): Promise<void> {
    try {
      await this.opts.rest.delete(path);
      this.stats.deletes++;
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 404) throw err;
    }
  }

  private async write(plan: PublishPlan): Promise<void> {
    const n = this.opts.concurrency ?? 16;
    await this.writeRoles(plan, true);
    await pool(plan.shards, n, (cm) => this.writeConfigMap(cm));
    await pool(plan.tables, n, (cm) => this.writeConfigMap(cm));
    await pool(plan.status, n, async (s) => {
      const key = `${s.namespace}/${s.name}`;
      if (this.written.has(key)) return;
      try {
        await this.opts.rest.create(cmPath(s.namespace), {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: s.name,
            namespace: s.namespace,
            labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [CONFIG_LABEL]: 'status' },
          },
        });
        this.stats.writes++;
      } catch (err) {
        if (!(err instanceof KubeApiError) || err.code !== 409) throw err;
      }
      this.written.set(key, '');
    });
    // Garbage: managed ConfigMaps no longer desired (classes of oversized tables keep theirs).
    const keep = new Set<string>();
    for (const cm of [...plan.tables, ...plan.shards]) keep.add(`${cm.namespace}/${cm.name}`);
    for (const s of plan.status) keep.add(`${s.namespace}/${s.name}`);
    const oversized = new Set(plan.oversized);
    const garbage = [...this.written.keys()].filter((k) => {
      if (keep.has(k)) return false;
      const id = k.slice(k.lastIndexOf('-') + 1);
      return !oversized.has(id);
    });
    await pool(garbage, n, async (k) => {
      const [ns, name] = k.split('/') as [string, string];
      await this.deleteIgnoringMissing(cmPath(ns, name));
      this.written.delete(k);
    });
    await this.writeRoles(plan, false);
    const liveScopes = new Set([...plan.scopes.keys()].map(scopedEndpointsRole));
    for (const name of [...this.scopeRoles]) {
      if (liveScopes.has(name)) continue;
      await this.deleteIgnoringMissing(rbacPath(this.opts.namespace, 'rolebindings', name));
      await this.deleteIgnoringMissing(rbacPath(this.opts.namespace, 'roles', name));
      this.rbacWritten.delete(`${this.opts.namespace}/roles/${name}`);
      this.rbacWritten.delete(`${this.opts.namespace}/rolebindings/${name}`);
      this.scopeRoles.delete(name);
    }
    for (const ns of [...this.roleNamespaces]) {
      if (plan.namespaces.has(ns)) continue;
      await this.deleteIgnoringMissing(rbacPath(ns, 'rolebindings', SIDECAR_ROLE));
      await this.deleteIgnoringMissing(rbacPath(ns, 'roles', SIDECAR_ROLE));
      this.rbacWritten.delete(`${ns}/roles/${SIDECAR_ROLE}`);
      this.rbacWritten.delete(`${ns}/rolebindings/${SIDECAR_ROLE}`);
      this.roleNamespaces.delete(ns);
    }
  }
}
