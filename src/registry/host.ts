/**
 * Host names as Istio compares them: short names resolved against a namespace, `*.suffix`
 * wildcards, and "most specific match" (exact beats wildcard, longer wildcard beats shorter).
 */
import { CLUSTER_DOMAIN } from '../api/mesh.js';

/**
 * `reviews` in `shop` -> `reviews.shop.svc.cluster.local`. Like Istio's ResolveShortnameToFQDN,
 * a name with a dot (`reviews.shop`) or a wildcard is taken as written.
 */
export function resolveShortName(host: string, namespace: string): string {
  if (host.includes('.') || host.includes('*')) return host.toLowerCase();
  return `${host}.${namespace}.${CLUSTER_DOMAIN}`.toLowerCase();
}

export function isWildcard(host: string): boolean {
  return host.startsWith('*');
}

/** `a` is equal to or contained in `b` (`foo.example.com` in `*.example.com`; anything in `*`). */
export function hostSubsetOf(a: string, b: string): boolean {
  if (a === b || b === '*') return true;
  if (!isWildcard(b)) return false;
  const suffix = b.slice(1);
  if (isWildcard(a)) return a.slice(1).endsWith(suffix);
  return a.length > suffix.length && a.endsWith(suffix);
}

/** The two host patterns have a name in common (Istio's host.Name.Matches). */
export function hostsOverlap(a: string, b: string): boolean {
  return hostSubsetOf(a, b) || hostSubsetOf(b, a);
}

/**
 * Picks, among `candidates` (in precedence order), the most specific one that `needle` is a
 * subset of: an exact name first, else the longest wildcard. Earlier candidates win ties.
 */
export function mostSpecificMatch<T>(needle: string, candidates: Iterable<[string, T]>): T | undefined {
  let best: T | undefined;
  let bestLen = -1;
  for (const [pattern, value] of candidates) {
    if (pattern === needle) return value;
    if (isWildcard(pattern) && hostSubsetOf(needle, pattern) && pattern.length > bestLen) {
      best = value;
      bestLen = pattern.length;
    }
  }
  return best;
}

/**
 * mostSpecificMatch over a fixed set of patterns, indexed once: exact names in a map, wildcards
 * longest first. For hot lookups (every service against every VirtualService/DestinationRule host).
 */
export class HostIndex<T> {
  private readonly exact = new Map<string, T>();
  private readonly wildcards: Array<[string, T]> = [];

  constructor(entries: Iterable<[string, T]>) {
    for (const [pattern, value] of entries) {
      if (isWildcard(pattern)) this.wildcards.push([pattern, value]);
      else if (!this.exact.has(pattern)) this.exact.set(pattern, value);
    }
    // Stable sort: equal lengths keep precedence order (earlier wins, as in mostSpecificMatch).
    this.wildcards.sort((a, b) => b[0].length - a[0].length);
  }

  lookup(needle: string): T | undefined {
    const e = this.exact.get(needle);
    if (e !== undefined) return e;
    for (const [pattern, value] of this.wildcards) if (hostSubsetOf(needle, pattern)) return value;
    return undefined;
  }
}
