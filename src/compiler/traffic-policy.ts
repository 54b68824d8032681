/**
 * DestinationRule traffic policy -> cluster settings. Inheritance follows Istio's
 * MergeSubsetTrafficPolicy: a matching port-level setting replaces the four policy fields
 * (connectionPool, loadBalancer, outlierDetection, tls) of its level as a whole (omitted ones
 * fall back to defaults, not to the level above); then each field a subset sets overrides.
 */
import type { TrafficPolicy } from '../api/networking/destination-rule.js';
import type {
  Cluster,
  ConnectionPool,
  ConsistentHash,
  FailoverPriority,
  LocalityLb,
  OutlierDetection,
} from '../tables/index.js';
import { durationMs } from './durations.js';
import type { Warn } from './warnings.js';

type Fields = Pick<TrafficPolicy, 'connectionPool' | 'loadBalancer' | 'outlierDetection' | 'tls'>;

function portLevel(
  policy: TrafficPolicy | undefined,
  port: number,
): { policy: Fields | undefined; hasPort: boolean } {
  if (!policy) return { policy: undefined, hasPort: false };
  const p = policy.portLevelSettings?.find((s) => s.port?.number === port);
  if (!p) return { policy, hasPort: false };
  return {
    policy: {
      connectionPool: p.connectionPool,
      loadBalancer: p.loadBalancer,
      outlierDetection: p.outlierDetection,
      tls: p.tls,
    },
    hasPort: true,
  };
}

export function effectivePolicy(
  top: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
  port: number,
): Fields {
  const base = portLevel(top, port).policy ?? {};
  if (!subset) return { ...base };
  const { policy: sub, hasPort } = portLevel(subset, port);
  const s = sub ?? {};
  return {
    connectionPool: s.connectionPool || hasPort ? s.connectionPool : base.connectionPool,
    loadBalancer: s.loadBalancer || hasPort ? s.loadBalancer : base.loadBalancer,
    outlierDetection: s.outlierDetection || hasPort ? s.outlierDetection : base.outlierDetection,
    tls: s.tls || hasPort ? s.tls : base.tls,
  };
}

const LB: Record<string, Cluster['lbPolicy']> = {
  ROUND_ROBIN: 'ROUND_ROBIN',
  LEAST_CONN: 'LEAST_REQUEST',
  LEAST_REQUEST: 'LEAST_REQUEST',
  RANDOM: 'RANDOM',
  PASSTHROUGH: 'PASSTHROUGH',
};

/** Cluster fields from an effective policy. `where` names the rule for warnings. */
export function clusterSettings(p: Fields, where: string, warn: Warn): Partial<Cluster> {
  const out: Partial<Cluster> = {};
  const lb = p.loadBalancer;
  if (lb?.simple && LB[lb.simple]) out.lbPolicy = LB[lb.simple];
  if (lb?.consistentHash) {
    const ch = consistentHash(lb.consistentHash, where, warn);
    if (ch) {
      out.lbPolicy = lb.consistentHash.maglev ? 'MAGLEV' : 'RING_HASH';
      out.consistentHash = ch;
    }
  }
  const locality = localityLb(lb?.localityLbSetting, p.outlierDetection !== undefined, where, warn);
  if (locality) out.localityLb = locality;

  const cp = p.connectionPool;
  const connect = durationMs(cp?.tcp?.connectTimeout);
  if (connect !== undefined) out.connectTimeoutMs = connect;
  const pool: ConnectionPool = {};
  if (cp?.tcp?.maxConnections !== undefined) pool.maxConnections = cp.tcp.maxConnections;
  if (cp?.http?.http1MaxPendingRequests !== undefined)
    pool.http1MaxPendingRequests = cp.http.http1MaxPendingRequests;
  if (cp?.http?.http2MaxRequests !== undefined) pool.http2MaxRequests = cp.http.http2MaxRequests;
  if (cp?.http?.maxRequestsPerConnection !== undefined)
    pool.maxRequestsPerConnection = cp.http.maxRequestsPerConnection;
  if (cp?.http?.maxRetries !== undefined) pool.maxRetries = cp.http.maxRetries;
  if (cp?.http?.maxConcurrentStreams !== undefined) pool.maxConcurrentStreams = cp.http.maxConcurrentStreams;
  const idle = durationMs(cp?.http?.idleTimeout ?? cp?.tcp?.idleTimeout);
  if (idle !== undefined) pool.idleTimeoutMs = idle;
  if (Object.keys(pool).length) out.connectionPool = pool;
  if (cp?.http?.h2UpgradePolicy === 'UPGRADE') out.upstreamProtocol = 'http2';
  if (cp?.http?.useClientProtocol) out.upstreamProtocol = 'auto';

  const od = p.outlierDetection;
  if (od) {
    const o: OutlierDetection = {};
    const c5 = od.consecutive5xxErrors ?? od.consecutiveErrors;
    if (c5 !== undefined) o.consecutive5xxErrors = c5;
    if (od.consecutiveGatewayErrors !== undefined) o.consecutiveGatewayErrors = od.consecutiveGatewayErrors;
    const interval = durationMs(od.interval);
    if (interval !== undefined) o.intervalMs = interval;
    const base = durationMs(od.baseEjectionTime);
    if (base !== undefined) o.baseEjectionTimeMs = base;
    if (od.maxEjectionPercent !== undefined)
      o.maxEjectionPercent = Math.min(100, Math.max(0, od.maxEjectionPercent));
    if (od.minHealthPercent !== undefined)
      o.minHealthPercent = Math.min(100, Math.max(0, od.minHealthPercent));
    out.outlierDetection = o;
  }

  const tls = p.tls;
  if (tls?.mode && tls.mode !== 'DISABLE') out.tls = { mode: tls.mode, ...(tls.sni ? { sni: tls.sni } : {}) };
  return out;
}

type ConsistentHashLB = NonNullable<NonNullable<Fields['loadBalancer']>['consistentHash']>;

/** Istio ConsistentHashLB -> the table's hash key and table size (Istio defaults 1024 / 65537). */
function consistentHash(ch: ConsistentHashLB, where: string, warn: Warn): ConsistentHash | undefined {
  const out: ConsistentHash = {};
  if (ch.httpHeaderName) out.httpHeaderName = ch.httpHeaderName.toLowerCase();
  else if (ch.httpCookie?.name) {
    const ttl = durationMs(ch.httpCookie.ttl);
    out.httpCookie = {
      name: ch.httpCookie.name,
      ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}),
      ...(ttl !== undefined ? { ttlMs: ttl } : {}),
    };
    const attributes = (ch.httpCookie.attributes ?? []).filter((x) => x.name);
    if (attributes.length)
      out.httpCookie.attributes = attributes.map((x) => ({
        name: x.name!,
        ...(x.value ? { value: x.value } : {}),
      }));
  } else if (ch.useSourceIp) out.useSourceIp = true;
  else if (ch.httpQueryParameterName) out.httpQueryParameterName = ch.httpQueryParameterName;
  else {
    warn(where, 'loadBalancer.consistentHash has no hash key; using the default balancer');
    return undefined;
  }
  if (ch.maglev) {
    if (ch.maglev.tableSize) out.tableSize = ch.maglev.tableSize;
  } else {
    const ring = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize;
    if (ring) out.minimumRingSize = ring;
  }
  return out;
}

type LocalitySetting = NonNullable<Fields['loadBalancer']>['localityLbSetting'];

/**
 * Istio's locality load balancing (on by default mesh-wide): `distribute` weights apply as
 * they are; priority failover (same locality, zone, region, `failover` region, others) only
 * with outlier detection in the same policy, as Istio does (without it Envoy could never
 * notice a failed locality).
 */
function localityLb(s: LocalitySetting, outlier: boolean, where: string, warn: Warn): LocalityLb | undefined {
  if (s?.enabled === false) return undefined;
  if (s?.distribute?.length) {
    if (s.failover?.length)
      warn(where, 'localityLbSetting: distribute and failover both set; using distribute');
    const distribute: NonNullable<LocalityLb['distribute']> = [];
    for (const d of s.distribute) if (d.from && d.to) distribute.push({ from: d.from, to: { ...d.to } });
    return { distribute };
  }
  if (!outlier) return undefined;
  const failover: NonNullable<LocalityLb['failover']> = [];
  for (const f of s?.failover ?? []) if (f.from && f.to) failover.push({ from: f.from, to: f.to });
  const failoverPriority = failoverPriorityOf(s?.failoverPriority);
  return {
    ...(failover.length ? { failover } : {}),
    ...(failoverPriority.length ? { failoverPriority } : {}),
  };
}

/**
 * `failoverPriority` entries as label + value: `key=value` fixes the value, a bare `key`
 * leaves it to be filled with the proxy's own value (compile.ts, per workload).
 */
export function failoverPriorityOf(list: readonly string[] | undefined): FailoverPriority {
  const out: FailoverPriority = [];
  for (const entry of list ?? []) {
    const eq = entry.indexOf('=');
    if (eq < 0) {
      if (entry) out.push({ label: entry });
    } else if (eq > 0) out.push({ label: entry.slice(0, eq), value: entry.slice(eq + 1) });
  }
  return out;
}
