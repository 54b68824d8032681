/**
 * What the router looks at for one request, parsed once: method, path split from query,
 * authority and destination port. Lazily derived values (lowercased path, query params) are
 * computed on first use only, since most route tables never need them.
 */
import { getHeader } from '../headers.js';

export class RequestView {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string without the `?`, '' when absent. */
  query: string;
  /** Host[:port] as sent (Host header or the absolute-form authority). */
  authority: string;
  /** Destination port: original dst, listener port, or the authority's port. */
  port: number;
  readonly rawHeaders: string[];
  private lowerPathCache: string | undefined;
  private queryParamsCache: Map<string, string> | undefined;

  constructor(method: string, target: string, authority: string, port: number, rawHeaders: string[]) {
    this.method = method;
    const q = target.indexOf('?');
    this.path = q === -1 ? target : target.slice(0, q);
    this.query = q === -1 ? '' : target.slice(q + 1);
    this.authority = authority;
    this.port = port;
    this.rawHeaders = rawHeaders;
    this.lowerPathCache = undefined;
    this.queryParamsCache = undefined;
  }

  get lowerPath(): string {
    this.lowerPathCache ??= this.path.toLowerCase();
    return this.lowerPathCache;
  }

  header(lower: string): string | undefined {
    return getHeader(this.rawHeaders, lower);
  }

  /** First value of a query parameter (raw, not percent-decoded, like Envoy). */
  queryParam(name: string): string | undefined {
    if (this.queryParamsCache === undefined) {
      const map = new Map<string, string>();
      if (this.query) {
        for (const part of this.query.split('&')) {
          if (!part) continue;
          const eq = part.indexOf('=');
          const k = eq === -1 ? part : part.slice(0, eq);
          if (!map.has(k)) map.set(k, eq === -1 ? '' : part.slice(eq + 1));
        }
      }
      this.queryParamsCache = map;
    }
    return this.queryParamsCache.get(name);
  }

  /** Target path with query, as sent upstream. */
  get target(): string {
    return this.query ? `${this.path}?${this.query}` : this.path;
  }
}

/** Splits `host[:port]` (IPv6 in brackets allowed); port is undefined when absent/invalid. */
export function splitAuthority(authority: string): { host: string; port: number | undefined } {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > close && colon !== -1) {
    const p = Number(authority.slice(colon + 1));
    const host = authority.slice(0, colon);
    return { host, port: Number.isInteger(p) && p > 0 && p < 65536 ? p : undefined };
  }
  return { host: authority, port: undefined };
}
