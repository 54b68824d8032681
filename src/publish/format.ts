/**
 * The published format: what the controller writes into ConfigMaps and the sidecar agent
 * reads. Shared by src/publish (writer), src/agent/config (reader) and the CLI.
 *
 * Per workload class (namespace + service account + labels, see registry/workloads.ts), in
 * the workload's namespace:
 *  - `isthmus-tables-<class>`: `tables.json` (ProxyTables; gzip in binaryData
 *    `tables.json.gz` when large) and `endpoints-index.json` (EndpointIndex: which pooled
 *    endpoint lists the class's clusters use, plus the class-specific inline ones);
 *  - `isthmus-status-<class>`: written by the agents, one key per pod, the applied versions.
 * Shared, in the controller namespace:
 *  - `isthmus-endpoints-<n>`: `endpoints.json`, pool key -> Endpoint[]; a key lives in shard
 *    fnv1a(key) % shards. An endpoint change rewrites only the shard(s) holding it, never a
 *    workload's tables. These hold services exported to every namespace (`exportTo` empty or
 *    `*`) and are readable by every workload namespace.
 *  - `isthmus-endpoints-<scope>-<n>`: the same for services exported to a fixed set of
 *    namespaces (`.`, names): one shard set per set of namespaces (`scope` = a hash of them),
 *    readable only by those namespaces (Role `isthmus-sidecar-endpoints-<scope>`). Their pool
 *    keys read `@<scope>/<cluster>`, so an index says by itself which shard set a key is in.
 */
import { canonicalJson, shortHash } from '../registry/hash.js';
import type { WorkloadIdentity } from '../registry/types.js';
import { workloadKey } from '../registry/workloads.js';
import type { Endpoint } from '../tables/index.js';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'isthmus';
/** `tables` | `endpoints` | `status`. */
export const CONFIG_LABEL = 'isthmus.io/config';
export const CLASS_LABEL = 'isthmus.io/class';
export const CONTENT_HASH = 'isthmus.io/content-hash';
export const PUBLISHED_AT = 'isthmus.io/published-at';
export const TABLES_VERSION = 'isthmus.io/tables-version';
export const WORKLOAD_ANNOTATION = 'isthmus.io/workload';

export const TABLES_KEY = 'tables.json';
export const TABLES_GZ_KEY = 'tables.json.gz';
export const INDEX_KEY = 'endpoints-index.json';
export const SHARD_KEY = 'endpoints.json';

export const SIDECAR_ROLE = 'isthmus-sidecar';
export const ENDPOINTS_ROLE = 'isthmus-sidecar-endpoints';

export const INDEX_API_VERSION = 'isthmus.io/endpoints-index/v1';

export interface EndpointIndex {
  apiVersion: typeof INDEX_API_VERSION;
  /** Namespace of the shard ConfigMaps. */
  namespace: string;
  shards: number;
  /** Scope -> shard count, for the scoped pool keys (`@<scope>/...`) this index uses. */
  scopes?: Record<string, number>;
  /** Cluster name -> pool key (usually the cluster name itself). */
  pooled: Record<string, string>;
  /** Cluster name -> endpoints not shared with other classes (inbound clusters). */
  inline: Record<string, Endpoint[]>;
}

/** Pool key -> endpoints, as stored in one shard. */
export type ShardData = Record<string, Endpoint[]>;

/** Applied versions one agent reports (value of its pod's key in the status ConfigMap). */
export interface AppliedStatus {
  tables: string;
  endpoints: string;
  /** RFC 3339 time of the last apply. */
  at: string;
  /** Version of the last rejected config, if the newest one was rejected. */
  rejected?: string;
  error?: string;
}

/** Stable id of a workload class: 16 hex chars of the class key. */
export function classId(w: Pick<WorkloadIdentity, 'namespace' | 'labels' | 'serviceAccount'>): string {
  return shortHash(workloadKey(w));
}

export const tablesConfigMapName = (id: string) => `isthmus-tables-${id}`;
export const statusConfigMapName = (id: string) => `isthmus-status-${id}`;
export const shardConfigMapName = (n: number) => `isthmus-endpoints-${n}`;
export const scopedShardConfigMapName = (scope: string, n: number) => `isthmus-endpoints-${scope}-${n}`;
/** The Role naming the shards of one scope, in the controller namespace. */
export const scopedEndpointsRole = (scope: string) => `${ENDPOINTS_ROLE}-${scope}`;

/** Id of a set of namespaces (sorted, unique) that services are exported to. */
export function scopeId(namespaces: readonly string[]): string {
  return `s${shortHash(namespaces.join(','), 10)}`;
}

/** The scope of a pool key (`@<scope>/<cluster>`), undefined for a mesh-wide one. */
export function scopeOfKey(key: string): string | undefined {
  return key.charCodeAt(0) === 64 /* @ */ ? key.slice(1, key.indexOf('/')) : undefined;
}

/** The shard ConfigMap holding a pool key. */
export function shardNameOf(key: string, index: Pick<EndpointIndex, 'shards' | 'scopes'>): string {
  const scope = scopeOfKey(key);
  if (scope === undefined) return shardConfigMapName(shardOf(key, index.shards));
  return scopedShardConfigMapName(scope, shardOf(key, index.scopes?.[scope] ?? 1));
}

/** 32-bit FNV-1a: the shard of a pool key (the agent computes it the same way). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function shardOf(key: string, shards: number): number {
  return fnv1a(key) % Math.max(1, shards);
}

/** The shard ConfigMap names an index needs. */
export function shardsOf(index: EndpointIndex): string[] {
  const out = new Set<string>();
  for (const key of Object.values(index.pooled)) out.add(shardNameOf(key, index));
  return [...out].sort();
}

/** Version of an assembled endpoint table: a hash of its content (agent and CLI agree). */
export function endpointsVersion(clusters: Record<string, Endpoint[]>): string {
  return shortHash(canonicalJson(clusters));
}
