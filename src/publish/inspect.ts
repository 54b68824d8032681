/**
 * What `isthmus proxy-status` and `proxy-config` read: for each pod, the config published for
 * its workload class (tables ConfigMap + endpoint shards, assembled as the agent does) and
 * the versions its agent reported applying (status ConfigMap). Read-only.
 */
import type { KubeList, KubeObject, KubeRest } from '../config-source/kubernetes-rest.js';
import { workloadsFromPods } from '../registry/workloads.js';
import type { EndpointTable } from '../tables/index.js';
import { assembleEndpoints, readShardConfigMap, readTablesConfigMap } from './assemble.js';
import {
  type AppliedStatus,
  CONFIG_LABEL,
  classId,
  type EndpointIndex,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  PUBLISHED_AT,
  type ShardData,
  shardsOf,
  statusConfigMapName,
  tablesConfigMapName,
} from './format.js';

export type SyncState = 'SYNCED' | 'STALE' | 'REJECTED' | 'UNKNOWN';

export interface ProxyStatusRow {
  pod: string;
  namespace: string;
  classId: string;
  latest: { tables: string; endpoints: string };
  applied?: AppliedStatus;
  state: SyncState;
  /** For STALE/REJECTED: how long the latest config has been published without being applied. */
  staleForMs?: number;
}

export interface PublishedConfig {
  classId: string;
  tables: unknown;
  endpoints: EndpointTable;
  index: EndpointIndex;
  /** Newest publication time of the tables ConfigMap and its shards (ms since epoch). */
  tablesPublishedAt: number;
  endpointsPublishedAt: number;
  applied?: AppliedStatus;
}

type ConfigMap = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };

function selector(kind: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY},${CONFIG_LABEL}=${kind}`;
}

const publishedAt = (cm: KubeObject | undefined) =>
  Date.parse(cm?.metadata?.annotations?.[PUBLISHED_AT] ?? '') || 0;

/** The class of a pod, as the controller computes it (undefined: no sidecar config). */
export function podClass(pod: KubeObject): string | undefined {
  const [w] = workloadsFromPods([{ ...pod, kind: 'Pod' }]);
  return w ? classId(w) : undefined;
}

/** Caches ConfigMaps read during one command. */
class Reader {
  private readonly shards = new Map<string, { cm?: ConfigMap; data?: ShardData }>();
  constructor(private readonly rest: KubeRest) {}

  async shard(namespace: string, name: string) {
    const key = `${namespace}/${name}`;
    let s = this.shards.get(key);
    if (!s) {
      try {
        const cm = await this.rest.get<ConfigMap>(`/api/v1/namespaces/${namespace}/configmaps/${name}`);
        const r = readShardConfigMap(cm);
        s = { cm, ...(r.ok ? { data: r.value } : {}) };
      } catch {
        s = {};
      }
      this.shards.set(key, s);
    }
    return s;
  }

  async assemble(tablesCm: ConfigMap, status: ConfigMap | undefined, pod: string, id: string) {
    const read = readTablesConfigMap(tablesCm);
    if (!read.ok) throw new Error(read.error);
    const { index, tables } = read.value;
    const data = new Map<string, ShardData>();
    let endpointsPublishedAt = 0;
    for (const name of shardsOf(index)) {
      const s = await this.shard(index.namespace, name);
      if (s.data) data.set(name, s.data);
      endpointsPublishedAt = Math.max(endpointsPublishedAt, publishedAt(s.cm));
    }
    const raw = status?.data?.[pod];
    let applied: AppliedStatus | undefined;
    try {
      applied = raw ? (JSON.parse(raw) as AppliedStatus) : undefined;
    } catch {
      applied = undefined;
    }
    const out: PublishedConfig = {
      classId: id,
      tables,
      index,
      endpoints: assembleEndpoints(index, data).table,
      tablesPublishedAt: publishedAt(tablesCm),
      endpointsPublishedAt,
      ...(applied ? { applied } : {}),
    };
    return out;
  }
}

export function syncState(cfg: PublishedConfig, now = Date.now()): Omit<ProxyStatusRow, 'pod' | 'namespace'> {
  const latest = {
    tables: String((cfg.tables as { version?: unknown }).version ?? ''),
    endpoints: cfg.endpoints.version,
  };
  const base = { classId: cfg.classId, latest, ...(cfg.applied ? { applied: cfg.applied } : {}) };
  const a = cfg.applied;
  if (!a) return { ...base, state: 'UNKNOWN' };
  const tablesOk = a.tables === latest.tables;
  const epsOk = a.endpoints === latest.endpoints;
  if (tablesOk && epsOk) return { ...base, state: 'SYNCED' };
  const since = Math.max(tablesOk ? 0 : cfg.tablesPublishedAt, epsOk ? 0 : cfg.endpointsPublishedAt);
  const rejected =
    a.rejected !== undefined && (a.rejected === latest.tables || a.rejected === latest.endpoints);
  return {
    ...base,
    state: rejected ? 'REJECTED' : 'STALE',
    staleForMs: since ? Math.max(0, now - since) : 0,
  };
}

/** Every pod with published sidecar config (optionally in one namespace). */
export async function proxyStatus(
  rest: KubeRest,
  opts: { namespace?: string } = {},
): Promise<ProxyStatusRow[]> {
  const scope = opts.namespace ? `/api/v1/namespaces/${opts.namespace}` : '/api/v1';
  const [pods, tables, statuses] = await Promise.all([
    rest.get<KubeList>(`${scope}/pods`),
    rest.get<KubeList<ConfigMap>>(`${scope}/configmaps`, { labelSelector: selector('tables') }),
    rest.get<KubeList<ConfigMap>>(`${scope}/configmaps`, { labelSelector: selector('status') }),
  ]);
  const byName = (list: KubeList<ConfigMap>) =>
    new Map(list.items.map((c) => [`${c.metadata?.namespace}/${c.metadata?.name}`, c] as const));
  const tablesBy = byName(tables);
  const statusBy = byName(statuses);
  const reader = new Reader(rest);
  const rows: ProxyStatusRow[] = [];
  for (const pod of pods.items) {
    const ns = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const id = podClass(pod);
    if (!id) continue;
    const cm = tablesBy.get(`${ns}/${tablesConfigMapName(id)}`);
    if (!cm) continue;
    const cfg = await reader.assemble(cm, statusBy.get(`${ns}/${statusConfigMapName(id)}`), name, id);
    rows.push({ pod: name, namespace: ns, ...syncState(cfg) });
  }
  return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
}

/** The config published for one pod (what its sidecar holds when SYNCED). */
export async function podConfig(rest: KubeRest, namespace: string, pod: string): Promise<PublishedConfig> {
  const p = await rest.get<KubeObject>(`/api/v1/namespaces/${namespace}/pods/${pod}`);
  const id = podClass(p);
  if (!id) throw new Error(`pod ${namespace}/${pod} has no sidecar config (opted out of injection?)`);
  const base = `/api/v1/namespaces/${namespace}/configmaps`;
  const cm = await rest.get<ConfigMap>(`${base}/${tablesConfigMapName(id)}`);
  const status = await rest.get<ConfigMap>(`${base}/${statusConfigMapName(id)}`).catch(() => undefined);
  return new Reader(rest).assemble(cm, status, pod, id);
}
