/**
 * What should exist (pure): compiled results per workload class -> the ConfigMaps to hold
 * them and the names each namespace's sidecars may read. The publisher diffs this against
 * what it wrote before.
 *
 * Endpoints: an outbound cluster's endpoint list is the same for every class that sees the
 * cluster (the compiler even shares the array), so it is stored once, in a pool split into
 * shards by key hash. When classes disagree about one cluster name (namespace-local
 * DestinationRules defining a subset differently) the most common variant keeps the plain
 * name as key and the others get a key derived from the set of classes using them: a key
 * never depends on endpoint content, so an endpoint change leaves every class index alone.
 * Inbound clusters (local app ports) are class-specific and stay inline in the index.
 */
import { gzipSync } from 'node:zlib';
import type { CompileResult } from '../compiler/index.js';
import { getOrCreate, shortHash } from '../registry/hash.js';
import type { MeshService, WorkloadIdentity } from '../registry/types.js';
import type { Endpoint } from '../tables/index.js';
import {
  CLASS_LABEL,
  CONFIG_LABEL,
  type EndpointIndex,
  INDEX_API_VERSION,
  INDEX_KEY,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  SHARD_KEY,
  scopedShardConfigMapName,
  scopeId,
  shardConfigMapName,
  shardOf,
  statusConfigMapName,
  TABLES_GZ_KEY,
  TABLES_KEY,
  TABLES_VERSION,
  tablesConfigMapName,
  WORKLOAD_ANNOTATION,
} from './format.js';

export interface ClassResult {
  id: string;
  workload: WorkloadIdentity;
  result: CompileResult;
}

export interface DesiredConfigMap {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  /** Content hash of data + binaryData (stored in an annotation; equal hash = skip). */
  hash: string;
  bytes: number;
}

export interface PublishPlan {
  tables: DesiredConfigMap[];
  /** Mesh-wide shards and the shards of every scope. */
  shards: DesiredConfigMap[];
  /**
   * Scope -> the namespaces its services are exported to and its shard ConfigMaps: endpoints
   * of services not exported to every namespace, readable only by those namespaces.
   */
  scopes: Map<string, { namespaces: string[]; shards: number; names: string[] }>;
  /** Status ConfigMaps (created empty if missing; agents fill them). */
  status: Array<{ namespace: string; name: string; classId: string }>;
  /** Workload namespace -> ConfigMap names its sidecars read (tables) and patch (status). */
  namespaces: Map<string, { read: string[]; patch: string[] }>;
  shardCount: number;
  /** Classes whose tables did not fit in a ConfigMap (not published; old config stays). */
  oversized: string[];
}

export interface PlanOptions {
  /** Namespace of the shared endpoint shards (the controller's). */
  namespace: string;
  /** Shard count used last time (hysteresis: shards are not reshuffled for small changes). */
  previousShards?: number;
  /** The same per scope. */
  previousScopeShards?: ReadonlyMap<string, number>;
  /**
   * Hostname -> the namespaces it is exported to, for services not exported to every
   * namespace (see `exportScopes`); hosts not in the map are mesh-wide.
   */
  exportScopes?: ReadonlyMap<string, readonly string[]>;
  /** Target bytes per shard (default 256 KiB). */
  targetShardBytes?: number;
  /** Tables above this are gzipped into binaryData (default 512 KiB). */
  compressAbove?: number;
}

/** ConfigMaps are limited to 1 MiB in total; keep headroom for metadata. */
export const MAX_CONFIGMAP_BYTES = 1_000_000;

const LIST_JSON = new WeakMap<readonly Endpoint[], string>();
function listJson(list: readonly Endpoint[]): string {
  let s = LIST_JSON.get(list);
  if (s === undefined) {
    s = JSON.stringify(list);
    LIST_JSON.set(list, s);
  }
  return s;
}

function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  return Object.fromEntries([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function labels(kind: string, id?: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY, [CONFIG_LABEL]: kind, ...(id ? { [CLASS_LABEL]: id } : {}) };
}

interface Pooled {
  pool: Map<string, string>;
  indexes: Map<string, { pooled: Map<string, string>; inline: Map<string, Endpoint[]> }>;
}

function poolEndpoints(classes: readonly ClassResult[]): Pooled {
  // cluster name -> variant json -> class ids
  const variants = new Map<string, Map<string, string[]>>();
  const indexes: Pooled['indexes'] = new Map();
  for (const c of classes) {
    const idx = { pooled: new Map<string, string>(), inline: new Map<string, Endpoint[]>() };
    indexes.set(c.id, idx);
    for (const [name, list] of Object.entries(c.result.endpoints.clusters)) {
      if (!name.startsWith('outbound|')) {
        idx.inline.set(name, list);
        continue;
      }
      const byJson = getOrCreate(variants, name, () => new Map<string, string[]>());
      const json = listJson(list);
      const users = byJson.get(json);
      if (users) users.push(c.id);
      else byJson.set(json, [c.id]);
    }
  }
  const pool = new Map<string, string>();
  for (const [name, byJson] of variants) {
    const ranked = [...byJson.entries()].sort(
      ([ja, a], [jb, b]) => b.length - a.length || (ja < jb ? -1 : ja > jb ? 1 : 0),
    );
    ranked.forEach(([json, users], i) => {
      const key = i === 0 ? name : `${name}~${shortHash([...users].sort().join(','), 10)}`;
      pool.set(key, json);
      for (const id of users) indexes.get(id)!.pooled.set(name, key);
    });
  }
  return { pool, indexes };
}

function buildShards(
  pool: Map<string, string>,
  count: number,
  opts: PlanOptions,
  nameOf: (n: number) => string,
): DesiredConfigMap[] {
  const buckets: Array<Array<[string, string]>> = Array.from({ length: count }, () => []);
  for (const [key, json] of pool) buckets[shardOf(key, count)]!.push([key, json]);
  return buckets.map((entries, n) => {
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // Hand-built JSON: the lists are already serialized once (and cached) above.
    const text = `{${entries.map(([k, j]) => `${JSON.stringify(k)}:${j}`).join(',')}}`;
    return {
      namespace: opts.namespace,
      name: nameOf(n),
      labels: labels('endpoints'),
      annotations: {},
      data: { [SHARD_KEY]: text },
      hash: shortHash(text),
      bytes: text.length,
    };
  });
}

function shardCount(pool: Map<string, string>, opts: PlanOptions, previous: number | undefined): number {
  const target = opts.targetShardBytes ?? 256 * 1024;
  let total = 0;
  for (const [k, j] of pool) total += k.length + j.length + 4;
  let needed = 1;
  while (needed * target < total) needed *= 2;
  const prev = previous ?? 0;
  // Grow at once; shrink only when far too many (each change of count moves most keys).
  return prev >= needed && prev <= needed * 4 ? prev : needed;
}

interface SerializedTables {
  /** JSON text, or gzip+base64 of it when large. */
  text?: string;
  gz?: string;
  hash: string;
}

/**
 * Serialization of a tables document, memoized by object: the reconcile loop recompiles only
 * affected classes, so the others keep their (identical) objects and are not re-serialized.
 */
const SERIALIZED = new WeakMap<object, SerializedTables>();
function serializeTables(tables: object, compressAbove: number): SerializedTables {
  let s = SERIALIZED.get(tables);
  if (!s) {
    const text = JSON.stringify(tables);
    s =
      text.length > compressAbove
        ? { gz: gzipSync(text, { level: 1 }).toString('base64'), hash: shortHash(text) }
        : { text, hash: shortHash(text) };
    SERIALIZED.set(tables, s);
  }
  return s;
}

function tablesConfigMap(c: ClassResult, index: EndpointIndex, opts: PlanOptions): DesiredConfigMap {
  const t = serializeTables(c.result.tables, opts.compressAbove ?? 512 * 1024);
  const indexText = JSON.stringify(index);
  const data: Record<string, string> = { [INDEX_KEY]: indexText };
  if (t.text !== undefined) data[TABLES_KEY] = t.text;
  return {
    namespace: c.workload.namespace,
    name: tablesConfigMapName(c.id),
    labels: labels('tables', c.id),
    annotations: {
      [TABLES_VERSION]: c.result.tables.version,
      [WORKLOAD_ANNOTATION]: `${c.workload.namespace}/${c.workload.name}`,
    },
    data,
    ...(t.gz !== undefined ? { binaryData: { [TABLES_GZ_KEY]: t.gz } } : {}),
    hash: shortHash(`${t.hash}\n${indexText}`),
    bytes: indexText.length + (t.text?.length ?? t.gz?.length ?? 0),
  };
}

/**
 * Hostname -> namespaces, for hosts whose services are exported to a fixed set of namespaces
 * (Istio's visibility: `.` = the service's own namespace, `~` = none; empty or `*` = all).
 * A host defined by several services (ServiceEntries in several namespaces) is mesh-wide if
 * any of them is, else visible to the union.
 */
export function exportScopes(services: readonly MeshService[]): Map<string, string[]> {
  const scoped = new Map<string, Set<string>>();
  const everywhere = new Set<string>();
  for (const s of services) {
    if (s.exportTo.length === 0 || s.exportTo.includes('*')) {
      everywhere.add(s.hostname);
      continue;
    }
    const set = getOrCreate(scoped, s.hostname, () => new Set<string>());
    if (s.exportTo.includes('~')) continue;
    for (const ns of s.exportTo) set.add(ns === '.' ? s.namespace : ns);
  }
  const out = new Map<string, string[]>();
  for (const [host, set] of scoped) if (!everywhere.has(host)) out.set(host, [...set].sort());
  return out;
}

/** `outbound|9080|v1|reviews.shop.svc.cluster.local[~variant]` -> the host. */
function hostOfPoolKey(key: string): string {
  const host = key.split('|')[3] ?? '';
  const tilde = host.indexOf('~');
  return tilde < 0 ? host : host.slice(0, tilde);
}

function fitShards(
  pool: Map<string, string>,
  opts: PlanOptions,
  previous: number | undefined,
  nameOf: (n: number) => string,
): { count: number; shards: DesiredConfigMap[] } {
  let count = shardCount(pool, opts, previous);
  let shards = buildShards(pool, count, opts, nameOf);
  // An unlucky hash spread can overfill one shard: double until all fit (a single list over
  // the limit cannot be split and is reported by the publisher).
  while (shards.some((s) => s.bytes > MAX_CONFIGMAP_BYTES) && count < 4096 && pool.size > count) {
    count *= 2;
    shards = buildShards(pool, count, opts, nameOf);
  }
  return { count, shards };
}

export function planPublish(classes: readonly ClassResult[], opts: PlanOptions): PublishPlan {
  // One entry per class (the first wins if a caller passes duplicates).
  const unique = new Map<string, ClassResult>();
  for (const c of classes) if (!unique.has(c.id)) unique.set(c.id, c);
  const sorted = [...unique.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const { pool, indexes } = poolEndpoints(sorted);
  // Split the pool by export scope; scoped keys are renamed `@<scope>/<key>`.
  const publicPool = new Map<string, string>();
  const scopePools = new Map<string, { namespaces: string[]; pool: Map<string, string> }>();
  const renamed = new Map<string, string>();
  const scopeOfHost = new Map<string, string>();
  for (const [key, json] of pool) {
    const host = hostOfPoolKey(key);
    const namespaces = opts.exportScopes?.get(host);
    if (!namespaces) {
      publicPool.set(key, json);
      continue;
    }
    const scope = getOrCreate(scopeOfHost, host, () => scopeId(namespaces));
    const scoped = `@${scope}/${key}`;
    renamed.set(key, scoped);
    getOrCreate(scopePools, scope, () => ({ namespaces: [...namespaces], pool: new Map() })).pool.set(
      scoped,
      json,
    );
  }
  const pub = fitShards(publicPool, opts, opts.previousShards, shardConfigMapName);
  const plan: PublishPlan = {
    tables: [],
    shards: pub.shards,
    scopes: new Map(),
    status: [],
    namespaces: new Map(),
    shardCount: pub.count,
    oversized: [],
  };
  for (const scope of [...scopePools.keys()].sort()) {
    const sp = scopePools.get(scope)!;
    const fit = fitShards(sp.pool, opts, opts.previousScopeShards?.get(scope), (n) =>
      scopedShardConfigMapName(scope, n),
    );
    plan.shards.push(...fit.shards);
    plan.scopes.set(scope, {
      namespaces: sp.namespaces,
      shards: fit.count,
      names: fit.shards.map((s) => s.name),
    });
  }
  for (const c of sorted) {
    const idx = indexes.get(c.id)!;
    const pooled = new Map<string, string>();
    const scopes = new Map<string, number>();
    for (const [name, key] of idx.pooled) {
      const scoped = renamed.get(key);
      pooled.set(name, scoped ?? key);
      if (scoped) {
        const scope = scoped.slice(1, scoped.indexOf('/'));
        scopes.set(scope, plan.scopes.get(scope)!.shards);
      }
    }
    const index: EndpointIndex = {
      apiVersion: INDEX_API_VERSION,
      namespace: opts.namespace,
      shards: pub.count,
      ...(scopes.size ? { scopes: sortedRecord(scopes) } : {}),
      pooled: sortedRecord(pooled),
      inline: sortedRecord(idx.inline),
    };
    const cm = tablesConfigMap(c, index, opts);
    if (cm.bytes > MAX_CONFIGMAP_BYTES) {
      plan.oversized.push(c.id);
      continue;
    }
    plan.tables.push(cm);
    const status = statusConfigMapName(c.id);
    plan.status.push({ namespace: c.workload.namespace, name: status, classId: c.id });
    const ns = getOrCreate(plan.namespaces, c.workload.namespace, () => ({
      read: [] as string[],
      patch: [] as string[],
    }));
    ns.read.push(cm.name);
    ns.patch.push(status);
  }
  return plan;
}
