/**
 * Virtual host selection by Host/authority, with Envoy's precedence: exact domain, then the
 * longest `*suffix` wildcard, then the longest `prefix*` wildcard, then `*`. The lookup is
 * tried on the full authority and then without its port (Istio lists domains both ways).
 * Results are memoized per authority string, bounded, since a proxy sees few distinct hosts.
 */
import { splitAuthority } from './request-view.js';

const MEMO_LIMIT = 4096;

export class VirtualHostIndex<V> {
  private readonly exact = new Map<string, V>();
  private readonly suffixes: Array<{ suffix: string; value: V }> = [];
  private readonly prefixes: Array<{ prefix: string; value: V }> = [];
  private any: V | undefined;
  private readonly memo = new Map<string, V | null>();

  add(domain: string, value: V): void {
    const d = domain.toLowerCase();
    if (d === '*') this.any = value;
    else if (d.startsWith('*')) this.suffixes.push({ suffix: d.slice(1), value });
    else if (d.endsWith('*')) this.prefixes.push({ prefix: d.slice(0, -1), value });
    else this.exact.set(d, value);
    this.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  find(authority: string): V | undefined {
    const hit = this.memo.get(authority);
    if (hit !== undefined) return hit ?? undefined;
    const found = this.lookup(authority.toLowerCase());
    if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
    this.memo.set(authority, found ?? null);
    return found;
  }

  private lookup(host: string): V | undefined {
    const { host: bare, port } = splitAuthority(host);
    return this.match(host) ?? (port !== undefined ? this.match(bare) : undefined) ?? this.any;
  }

  private match(host: string): V | undefined {
    const e = this.exact.get(host);
    if (e !== undefined) return e;
    for (const s of this.suffixes) {
      if (host.length > s.suffix.length && host.endsWith(s.suffix)) return s.value;
    }
    for (const p of this.prefixes) {
      if (host.length > p.prefix.length && host.startsWith(p.prefix)) return p.value;
    }
    return undefined;
  }
}
