/**
 * The compiled form of a listener's `l4Routes` (tables/l4-routes.ts): which cluster serves a
 * connection, by its destination address and SNI. Built once per listener object of a config
 * version; a pick scans the (few) routes without allocating, then draws a weighted cluster.
 */
import { BlockList } from 'node:net';
import type { L4Route, Listener } from '../../tables/index.js';
import { parseSubnet } from '../../tables/index.js';

/** SNI specificity: higher wins (exact > longer wildcard suffix > `*` > no sniHosts). */
const SNI_NONE = 0;
const SNI_ANY = 1;
const SNI_EXACT = 1 << 20;

/**
 * The destination subnets of a route. IPv4 (the common case, also IPv4-mapped IPv6) is
 * matched on integers; IPv6 through one BlockList per prefix length, longest first.
 */
interface Subnets {
  /** Network and mask per IPv4 subnet, sorted by prefix length, longest first. */
  readonly v4: readonly { readonly net: number; readonly mask: number; readonly prefix: number }[];
  readonly v6: readonly { readonly prefix: number; readonly list: BlockList }[];
}

/** One route's weighted clusters. */
class Target {
  readonly clusters: readonly string[];
  /** Cumulative weights, for the weighted draw. */
  private readonly cumulative: Float64Array;
  private readonly total: number;
  /** Position of the route in l4Routes: the earlier wins a tie. */
  readonly order: number;

  constructor(r: L4Route, order: number) {
    this.order = order;
    const weighted = r.clusters.filter((c) => c.weight > 0);
    this.clusters = weighted.map((c) => c.cluster);
    this.cumulative = new Float64Array(weighted.length);
    let sum = 0;
    weighted.forEach((c, i) => {
      sum += c.weight;
      this.cumulative[i] = sum;
    });
    this.total = sum;
  }

  pickCluster(): string | null {
    const n = this.clusters.length;
    if (n <= 1) return n === 1 ? this.clusters[0]! : null;
    const x = Math.random() * this.total;
    const c = this.cumulative;
    for (let i = 0; i < n - 1; i++) if (x < c[i]!) return this.clusters[i]!;
    return this.clusters[n - 1]!;
  }
}

/**
 * The routes sharing one `destinationSubnets` (or none), indexed by SNI: an exact name is one
 * Map get, wildcards are scanned longest suffix first. The earlier route wins a tie.
 */
class SniGroup {
  readonly subnets: Subnets | null;
  private readonly exact = new Map<string, Target>();
  private readonly wildcards: { readonly suffix: string; readonly target: Target }[] = [];
  private anySni: Target | null = null;
  private noSni: Target | null = null;
  /** SNI score of the last `match` hit (read right after it; avoids returning a pair). */
  score = 0;

  constructor(subnets: Subnets | null) {
    this.subnets = subnets;
  }

  add(sniHosts: readonly string[] | undefined, t: Target): void {
    if (sniHosts === undefined) {
      this.noSni ??= t;
      return;
    }
    for (const h of sniHosts) {
      if (h === '*') this.anySni ??= t;
      else if (h.startsWith('*.')) {
        const suffix = h.slice(1);
        if (!this.wildcards.some((w) => w.suffix === suffix)) this.wildcards.push({ suffix, target: t });
      } else if (!this.exact.has(h)) this.exact.set(h, t);
    }
    // Longest suffix first; sort is stable, so equal lengths keep route order.
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  /** The most specific route for `sni` ('' = none), its score in `score`; null = none. */
  match(sni: string): Target | null {
    if (sni !== '') {
      const exact = this.exact.get(sni);
      if (exact !== undefined) {
        this.score = SNI_EXACT;
        return exact;
      }
      const w = this.wildcards;
      for (let i = 0; i < w.length; i++) {
        const suffix = w[i]!.suffix;
        if (sni.length > suffix.length && sni.endsWith(suffix)) {
          this.score = SNI_ANY + suffix.length;
          return w[i]!.target;
        }
      }
      if (this.anySni !== null) {
        this.score = SNI_ANY;
        return this.anySni;
      }
    }
    this.score = SNI_NONE;
    return this.noSni;
  }

  /**
   * Longest matching prefix length: -1 without subnets (any address), -2 when none matches.
   * `v4` is the destination as an unsigned IPv4 number, or -1 when it is not IPv4.
   */
  ipScore(ip: string, v4: number): number {
    const s = this.subnets;
    if (s === null) return -1;
    if (v4 >= 0) {
      for (let i = 0; i < s.v4.length; i++) {
        const n = s.v4[i]!;
        if ((v4 & n.mask) >>> 0 === n.net) return n.prefix;
      }
      return -2;
    }
    if (ip === '') return -2;
    for (let i = 0; i < s.v6.length; i++) if (s.v6[i]!.list.check(ip, 'ipv6')) return s.v6[i]!.prefix;
    return -2;
  }
}

function compileSubnets(cidrs: readonly string[]): Subnets {
  const v4: { net: number; mask: number; prefix: number }[] = [];
  const byPrefix = new Map<number, BlockList>();
  for (const c of cidrs) {
    const s = parseSubnet(c);
    if (typeof s === 'string') continue; // validateTables rejects these
    if (s.family === 'ipv4') {
      const mask = s.prefix === 0 ? 0 : (0xffffffff << (32 - s.prefix)) >>> 0;
      v4.push({ net: (ipv4Number(s.address) & mask) >>> 0, mask, prefix: s.prefix });
      continue;
    }
    let list = byPrefix.get(s.prefix);
    if (list === undefined) {
      list = new BlockList();
      byPrefix.set(s.prefix, list);
    }
    list.addSubnet(s.address, s.prefix, 'ipv6');
  }
  v4.sort((a, b) => b.prefix - a.prefix);
  const v6 = [...byPrefix.entries()].sort((a, b) => b[0] - a[0]).map(([prefix, list]) => ({ prefix, list }));
  return { v4, v6 };
}

/**
 * `a.b.c.d` (or `::ffff:a.b.c.d`) as an unsigned number; -1 when `ip` is not IPv4. Reads the
 * characters in place: no allocation per connection.
 */
export function ipv4Number(ip: string): number {
  let i = 0;
  if (ip.length > 7 && ip.charCodeAt(0) === 58 /* : */) {
    if (!ip.startsWith('::ffff:') && !ip.startsWith('::FFFF:')) return -1;
    i = 7;
  }
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

export class L4Router {
  /** One group per distinct destinationSubnets; the subnet-less group (if any) first. */
  private readonly groups: readonly SniGroup[];
  /** Whether any route matches destinationSubnets (else the destination is not read). */
  readonly usesIp: boolean;
  /** The listener's `cluster`: served when no route matches. */
  readonly fallback: string | null;

  constructor(listener: Listener) {
    const groups = new Map<string, SniGroup>();
    (listener.l4Routes ?? []).forEach((r, i) => {
      const cidrs = r.match?.destinationSubnets;
      const key = cidrs?.length ? [...cidrs].sort().join(',') : '';
      let g = groups.get(key);
      if (g === undefined) {
        g = new SniGroup(key === '' ? null : compileSubnets(cidrs!));
        groups.set(key, g);
      }
      g.add(r.match?.sniHosts, new Target(r, i));
    });
    this.groups = [...groups.values()];
    this.usesIp = this.groups.some((g) => g.subnets !== null);
    this.fallback = listener.cluster ?? null;
  }

  /**
   * The cluster for a connection to `ip` (the original destination or the listener's local
   * address; null when unknown) with server name `sni` ('' = none or not TLS); null = none.
   * Most specific wins: longest destination prefix, then SNI, then the earlier route.
   */
  pick(ip: string | null, sni: string): string | null {
    const dst = !this.usesIp || ip === null ? '' : ip;
    const v4 = dst === '' ? -1 : ipv4Number(dst);
    let best: Target | null = null;
    let bestIp = -2;
    let bestSni = -1;
    const groups = this.groups;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      const ipScore = g.ipScore(dst, v4);
      if (ipScore === -2 || ipScore < bestIp) continue;
      const t = g.match(sni);
      if (t === null) continue;
      const sniScore = g.score;
      if (ipScore > bestIp || sniScore > bestSni || (sniScore === bestSni && t.order < best!.order)) {
        best = t;
        bestIp = ipScore;
        bestSni = sniScore;
      }
    }
    return best === null ? this.fallback : best.pickCluster();
  }
}
