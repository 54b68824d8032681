/**
 * Envoy/Istio cluster naming: `<direction>|<port>|<subset>|<host>`, e.g.
 * `outbound|9080|v1|reviews.shop.svc.cluster.local`, `inbound|9080||`. Istio tools (and our
 * config_dump readers) parse this, so the compiler must produce exactly this form.
 */
export interface ClusterKey {
  direction: 'outbound' | 'inbound';
  port: number;
  subset: string;
  host: string;
}

export function clusterName(key: ClusterKey): string {
  return `${key.direction}|${key.port}|${key.subset}|${key.host}`;
}

/** Parses a cluster name; undefined when it is not in the Envoy/Istio form. */
export function parseClusterName(name: string): ClusterKey | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, host] = parts as [string, string, string, string];
  if (direction !== 'outbound' && direction !== 'inbound') return undefined;
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
  return { direction, port: Number(port), subset, host };
}

/** Envoy's passthrough / blackhole cluster names, kept for compatibility of dumps. */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
