/**
 * L4 routes of a `tcp` or `tls` listener: Istio's VirtualService `tcp` and `tls` rules after
 * the compiler evaluated what it can (port, sourceLabels, sourceNamespace, gateways). What
 * is left depends on the connection: the destination address (`destinationSubnets`) and, on
 * `tls` listeners, the SNI of the ClientHello (`sniHosts`). The proxy picks the MOST SPECIFIC
 * matching route, as Envoy's filter-chain match does (Istio makes one filter chain per match):
 * longest matching destination prefix first (a route without subnets ranks below any
 * subnet), then exact SNI over the longest `*.suffix` wildcard over `*` over no sniHosts; on
 * a tie the earlier route wins. No route matching: the listener's `cluster`, else the
 * connection is closed (BlackHoleCluster).
 */
import { isIP } from 'node:net';
import { Count, List, NonEmpty, Obj, Opt, type Static, Str } from './kit.js';

export const L4MatchSchema = Obj(
  {
    sniHosts: Opt(
      List(
        NonEmpty(),
        'tls listeners only. Lower-case server names: exact, `*.suffix` (one or more labels) or `*` (any SNI).',
      ),
    ),
    destinationSubnets: Opt(
      List(NonEmpty(), 'IPv4/IPv6 address or CIDR of the original destination (or the listener address).'),
    ),
  },
  'Every set field must match (AND); within a field any entry (OR). Absent fields match everything.',
);
export type L4Match = Static<typeof L4MatchSchema>;

export const L4WeightedClusterSchema = Obj({
  cluster: NonEmpty('Name of a cluster in `clusters`.'),
  weight: Count('Relative weight; 0 = never chosen. The route total must be > 0.'),
});
export type L4WeightedCluster = Static<typeof L4WeightedClusterSchema>;

export const L4RouteSchema = Obj({
  name: Opt(Str('For config_dump, e.g. `VirtualService shop/db tcp[0]`.')),
  match: Opt(L4MatchSchema),
  clusters: List(L4WeightedClusterSchema, 'Weighted split of connections; one entry = all.'),
});
export type L4Route = Static<typeof L4RouteSchema>;

export interface Subnet {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128); a string names what is wrong. */
export function parseSubnet(s: string): Subnet | string {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const kind = isIP(address);
  if (kind === 0) return `"${address}" is not an IPv4 or IPv6 address`;
  const max = kind === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `prefix length "${p}" must be 0..${max}`;
    prefix = Number(p);
  }
  return { address, prefix, family: kind === 4 ? 'ipv4' : 'ipv6' };
}

/** A server name pattern of `sniHosts`: lower case, exact, `*.suffix` or `*`; else what is wrong. */
export function sniPatternError(h: string): string | undefined {
  if (h !== h.toLowerCase()) return 'must be lower case';
  if (h === '*') return undefined;
  const name = h.startsWith('*.') ? h.slice(2) : h;
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(name))
    return 'must be a host name, `*.suffix` or `*`';
  return undefined;
}
