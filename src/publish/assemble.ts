/**
 * Reading the published format back (pure): ConfigMap data -> ProxyTables + EndpointTable.
 * Used by the agent before it applies, and by `isthmus proxy-status`/`proxy-config` to know
 * what a sidecar should hold. Never throws: problems come back as `error`.
 */
import { gunzipSync } from 'node:zlib';
import { ENDPOINTS_API_VERSION, type Endpoint, type EndpointTable } from '../tables/index.js';
import {
  type EndpointIndex,
  endpointsVersion,
  INDEX_API_VERSION,
  INDEX_KEY,
  SHARD_KEY,
  type ShardData,
  shardNameOf,
  TABLES_GZ_KEY,
  TABLES_KEY,
} from './format.js';

export interface ConfigMapLike {
  metadata?: { name?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** The `tables.json` document (unvalidated: the proxy validates) and the endpoint index. */
export function readTablesConfigMap(cm: ConfigMapLike): Parsed<{ tables: unknown; index: EndpointIndex }> {
  try {
    let text = cm.data?.[TABLES_KEY];
    const gz = cm.binaryData?.[TABLES_GZ_KEY];
    if (text === undefined && gz !== undefined) text = gunzipSync(Buffer.from(gz, 'base64')).toString('utf8');
    if (text === undefined) return { ok: false, error: `no ${TABLES_KEY} in ConfigMap ${cm.metadata?.name}` };
    const tables = JSON.parse(text) as unknown;
    const rawIndex = cm.data?.[INDEX_KEY];
    const index = rawIndex
      ? (JSON.parse(rawIndex) as EndpointIndex)
      : { apiVersion: INDEX_API_VERSION, namespace: '', shards: 1, pooled: {}, inline: {} };
    if (index.apiVersion !== INDEX_API_VERSION)
      return { ok: false, error: `unknown endpoint index version ${String(index.apiVersion)}` };
    return { ok: true, value: { tables, index: index as EndpointIndex } };
  } catch (err) {
    return { ok: false, error: `ConfigMap ${cm.metadata?.name}: ${(err as Error).message}` };
  }
}

export function readShardConfigMap(cm: ConfigMapLike): Parsed<ShardData> {
  try {
    const text = cm.data?.[SHARD_KEY];
    return { ok: true, value: text ? (JSON.parse(text) as ShardData) : {} };
  } catch (err) {
    return { ok: false, error: `ConfigMap ${cm.metadata?.name}: ${(err as Error).message}` };
  }
}

/**
 * The endpoint table of one class from its index and the shards (by ConfigMap name).
 * `missing` lists pool keys not found (a shard not yet received, or being rewritten): the
 * agent waits for them rather than apply a table with holes.
 */
export function assembleEndpoints(
  index: EndpointIndex,
  shards: ReadonlyMap<string, ShardData>,
): { table: EndpointTable; missing: string[] } {
  const clusters: Record<string, Endpoint[]> = {};
  const missing: string[] = [];
  const names = new Set([...Object.keys(index.pooled), ...Object.keys(index.inline)]);
  for (const name of [...names].sort()) {
    const inline = index.inline[name];
    if (inline) {
      clusters[name] = inline;
      continue;
    }
    const key = index.pooled[name]!;
    const shard = shards.get(shardNameOf(key, index));
    const list = shard?.[key];
    if (list) clusters[name] = list;
    else missing.push(key);
  }
  return {
    table: { apiVersion: ENDPOINTS_API_VERSION, version: endpointsVersion(clusters), clusters },
    missing,
  };
}
