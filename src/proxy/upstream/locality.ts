/**
 * Locality-aware load balancing, computed per host-set change from the proxy's own locality
 * (`node.locality`) and the cluster's `localityLb` (Istio localityLbSetting):
 * - failover (Istio's default with outlier detection): priorities 0 same region/zone/subzone,
 *   1 same region/zone, 2 same region, 3 a `failover` target region of the proxy's region,
 *   4 the rest. Traffic goes to the lowest priority with available hosts, spilling over in
 *   proportion to its health (Envoy priority load, overprovisioning factor 1.4).
 * - distribute: the first rule whose `from` matches the proxy's locality gives each endpoint
 *   locality a weight (a `to` weight is shared evenly by the localities it matches); localities
 *   matched by no `to` entry get no traffic.
 * - failoverPriority (Istio): endpoints matching the proxy on the first n of N labels get
 *   priority N - n (values resolved by the compiler); with an explicit `failover` list each
 *   level is split further by locality.
 * A proxy without a locality (and no failoverPriority), or a cluster without `localityLb`,
 * has one priority, one group.
 */
import type { Endpoint, FailoverPriority, Locality, LocalityLb } from '../../tables/index.js';
import type { EndpointState } from './endpoint.js';

export const OVERPROVISIONING = 1.4;

/** Istio's locality patterns: `region[/zone[/subzone]]`, `*` matching anything from there on. */
export function localityMatches(pattern: string, l: Locality | undefined): boolean {
  const parts = pattern.split('/');
  const have = [l?.region ?? '', l?.zone ?? '', l?.subzone ?? ''];
  for (let i = 0; i < parts.length && i < 3; i++) {
    const p = parts[i]!;
    if (p === '*') return true;
    if (p !== have[i]) return false;
  }
  return true;
}

/** Failover priority of an endpoint for a proxy at `self` (0 is best). */
export function priorityOf(ep: Locality | undefined, self: Locality, lb: LocalityLb): number {
  const region = ep?.region ?? '';
  if (region === (self.region ?? '')) {
    if ((ep?.zone ?? '') === (self.zone ?? '')) return (ep?.subzone ?? '') === (self.subzone ?? '') ? 0 : 1;
    return 2;
  }
  for (const f of lb.failover ?? []) if (f.from === self.region && f.to === region) return 3;
  return 4;
}

/**
 * Istio failoverPriority: the number of leading entries an endpoint's labels match, n of N,
 * gives priority N - n (all matched: 0).
 */
export function labelPriorityOf(ep: Endpoint, fp: FailoverPriority): number {
  let n = 0;
  for (; n < fp.length; n++) {
    const e = fp[n]!;
    if ((ep.labels?.[e.label] ?? '') !== (e.value ?? '')) break;
  }
  return fp.length - n;
}

/**
 * Hosts grouped into priority levels (failover mode), lowest first, empty levels dropped.
 * With failoverPriority the label priority orders first; an explicit `failover` list then
 * splits each level by locality (Istio: label priority x 5 + locality priority).
 */
export function priorityLevels(
  hosts: readonly EndpointState[],
  self: Locality | undefined,
  lb: LocalityLb | undefined,
): EndpointState[][] {
  if (lb === undefined || lb.distribute !== undefined) return [hosts.slice()];
  const fp = lb.failoverPriority;
  const byLocality = self !== undefined && !!self.region && (!fp?.length || !!lb.failover?.length);
  if (!fp?.length && !byLocality) return [hosts.slice()];
  const levels: EndpointState[][] = [];
  for (const h of hosts) {
    let p = fp?.length ? labelPriorityOf(h.spec, fp) * 5 : 0;
    if (byLocality) p += priorityOf(h.spec.locality, self!, lb);
    const level = levels[p];
    if (level === undefined) levels[p] = [h];
    else level.push(h);
  }
  return levels.filter((l) => l !== undefined && l.length > 0);
}

export interface WeightedGroup {
  hosts: EndpointState[];
  weight: number;
}

/** `distribute` groups for a proxy at `self`, or null when no rule applies. */
export function distributeGroups(
  hosts: readonly EndpointState[],
  self: Locality | undefined,
  lb: LocalityLb | undefined,
): WeightedGroup[] | null {
  if (self === undefined || lb?.distribute === undefined) return null;
  const rule = lb.distribute.find((d) => localityMatches(d.from, self));
  if (rule === undefined) return null;
  const byLocality = new Map<string, { key: string; hosts: EndpointState[] }>();
  const toKeys = Object.keys(rule.to);
  for (const h of hosts) {
    const key = toKeys.find((k) => localityMatches(k, h.spec.locality));
    if (key === undefined || rule.to[key] === 0) continue;
    const l = h.spec.locality;
    const id = `${l?.region ?? ''}/${l?.zone ?? ''}/${l?.subzone ?? ''}`;
    let g = byLocality.get(id);
    if (g === undefined) {
      g = { key, hosts: [] };
      byLocality.set(id, g);
    }
    g.hosts.push(h);
  }
  const shares = new Map<string, number>();
  for (const g of byLocality.values()) shares.set(g.key, (shares.get(g.key) ?? 0) + 1);
  return [...byLocality.values()].map((g) => ({
    hosts: g.hosts,
    weight: rule.to[g.key]! / shares.get(g.key)!,
  }));
}
