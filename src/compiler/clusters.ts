/**
 * Outbound clusters of a scope, Envoy-named `outbound|<port>|<subset>|<host>`: one per visible
 * service port, plus one per subset of the DestinationRule that applies to this proxy, with the
 * merged traffic policy, and their endpoints.
 */
import { getOrCreate } from '../registry/hash.js';
import { isHttpOrSniffed, upstreamProtocolOf } from '../registry/protocol.js';
import type { ScopedService } from '../registry/scope.js';
import type { MeshService, MeshSnapshot, ServicePort } from '../registry/types.js';
import { type Cluster, clusterName, type Endpoint } from '../tables/index.js';
import {
  type DestinationRuleIndex,
  destinationRuleFor,
  type MergedRule,
  type Subset,
} from './destination-rules.js';
import { clusterEndpoints } from './endpoints.js';
import { clusterTls } from './mtls.js';
import { clusterSettings, effectivePolicy } from './traffic-policy.js';
import type { Warn } from './warnings.js';

export interface ClusterSet {
  clusters: Map<string, Cluster>;
  endpoints: Map<string, Endpoint[]>;
  /** Rule applied per service hostname (for subset lookups by routes). */
  rules: Map<string, MergedRule>;
}

function baseCluster(svc: MeshService, port: ServicePort, name: string): Cluster {
  const c: Cluster = {
    name,
    service: { host: svc.hostname, name: svc.name, namespace: svc.namespace },
    // Istio's default load balancer is LEAST_REQUEST; headless/NONE go to the original destination.
    lbPolicy: svc.resolution === 'NONE' ? 'PASSTHROUGH' : 'LEAST_REQUEST',
  };
  if (upstreamProtocolOf(port.protocol) === 'http2') c.upstreamProtocol = 'http2';
  return c;
}

interface Built {
  cluster: Cluster;
  endpoints: Endpoint[];
  warnings: Array<[string, string]>;
}

/** The same service port under the same merged rule gives the same cluster for every proxy. */
const CACHE = new WeakMap<MeshSnapshot, Map<string, Built>>();

function ruleKey(rule: MergedRule | undefined): string {
  return rule ? `${rule.sources.join('+')}${rule.selector ? JSON.stringify(rule.selector) : ''}` : '';
}

function build(
  snap: MeshSnapshot,
  svc: MeshService,
  port: ServicePort,
  rule: MergedRule | undefined,
  subset: Subset | undefined,
): Built {
  const cache = getOrCreate(CACHE, snap, () => new Map<string, Built>());
  const key = `${svc.key}|${port.port}|${subset?.name ?? ''}|${ruleKey(rule)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const warnings: Array<[string, string]> = [];
  const warn: Warn = (r, m) => warnings.push([r, m]);
  const where = rule ? `DestinationRule ${rule.sources[0]}` : '';
  const name = clusterName({
    direction: 'outbound',
    port: port.port,
    subset: subset?.name ?? '',
    host: svc.hostname,
  });
  const policy = effectivePolicy(rule?.trafficPolicy, subset?.trafficPolicy, port.port);
  const c: Cluster = { ...baseCluster(svc, port, name), ...clusterSettings(policy, where, warn) };
  const tls = clusterTls({
    tls: policy.tls,
    snap,
    svc,
    port: port.port,
    subset: subset?.name ?? '',
    where,
    warn,
  });
  if (tls) c.tls = tls;
  else delete c.tls;
  if (!isHttpOrSniffed(port.protocol)) delete c.upstreamProtocol;
  const endpoints = clusterEndpoints(snap, svc, port, subset ? (subset.labels ?? {}) : undefined);
  if (subset && endpoints.length === 0 && snap.endpoints.get(svc.key)?.some((e) => e.ready))
    warn(where, `subset "${subset.name}" of ${svc.hostname} matches no ready endpoint`);
  const out = { cluster: c, endpoints, warnings };
  cache.set(key, out);
  return out;
}

export function buildOutboundClusters(
  snap: MeshSnapshot,
  idx: DestinationRuleIndex,
  services: readonly ScopedService[],
  proxyNamespace: string,
  labels: Record<string, string>,
  warn: Warn,
): ClusterSet {
  const out: ClusterSet = { clusters: new Map(), endpoints: new Map(), rules: new Map() };
  for (const { service: svc, ports } of services) {
    const rule = destinationRuleFor(idx, proxyNamespace, labels, svc);
    if (rule) out.rules.set(svc.hostname, rule);
    for (const port of ports) {
      if (port.protocol === 'UDP') continue;
      for (const subset of [undefined, ...(rule?.subsets ?? [])]) {
        if (subset && !subset.name) continue;
        const b = build(snap, svc, port, rule, subset);
        out.clusters.set(b.cluster.name, b.cluster);
        out.endpoints.set(b.cluster.name, b.endpoints);
        for (const [r, m] of b.warnings) warn(r, m);
      }
    }
  }
  return out;
}
