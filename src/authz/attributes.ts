/**
 * What the proxy knows about one request (or TCP connection) when it asks for a decision.
 * A flat object with every field set in the constructor; the proxy keeps one per connection
 * or stream and calls `reset()` (or overwrites fields) instead of allocating per request.
 *
 * Derived values (namespace from the principal, parsed IPs, host without port) are computed
 * lazily at most once per `reset()` and cached on the object.
 */
import { IP_INVALID, type IpFamily, parseIpInto } from './ip.js';

/** JWT payload as verified by RequestAuthentication (src/authz/jwt.ts). */
export type JwtClaims = Record<string, unknown>;

const EMPTY: readonly string[] = [];

export class AuthzAttributes {
  /** True for a plain TCP connection: only the non-HTTP fields of policies apply. */
  tcp = false;
  /** Peer address of the connection (`source.ip`, `ipBlocks`). */
  sourceIp = '';
  /** Original client address (`remote.ip`, `remoteIpBlocks`): from X-Forwarded-For or the proxy protocol; '' = sourceIp. */
  remoteIp = '';
  destinationIp = '';
  destinationPort = 0;
  /** TLS SNI of the downstream connection ('' = none). */
  sni = '';
  /** Peer identity from the mTLS certificate without `spiffe://` ('' = no mTLS peer). */
  sourcePrincipal = '';
  /** HTTP method, upper case as received. */
  method = '';
  /** Host / :authority as received (may carry a port). */
  host = '';
  /** Normalized path without the query string (see path.ts `normalizeRequestTarget`, `pathOf`). */
  path = '';
  /** Request headers as a flat `[name, value, name, value, ...]` array (names in any case). */
  headers: readonly string[] = EMPTY;
  /** `<iss>/<sub>` of a verified JWT ('' = none). */
  requestPrincipal = '';
  /** Verified JWT claims, or null. */
  claims: JwtClaims | null = null;

  // ---- lazily derived, reset by reset() ----
  private nsFor = '';
  private ns = '';
  private srcFor = '';
  private srcFamily: IpFamily = IP_INVALID;
  private readonly srcAddr = new Uint32Array(4);
  private remoteFor = '';
  private rmFamily: IpFamily = IP_INVALID;
  private readonly rmAddr = new Uint32Array(4);
  private dstFor = '';
  private dstFamily: IpFamily = IP_INVALID;
  private readonly dstAddr = new Uint32Array(4);
  private hostFor = '';
  private hostLow = '';
  private hostBare = '';

  reset(): this {
    this.tcp = false;
    this.sourceIp = '';
    this.remoteIp = '';
    this.destinationIp = '';
    this.destinationPort = 0;
    this.sni = '';
    this.sourcePrincipal = '';
    this.method = '';
    this.host = '';
    this.path = '';
    this.headers = EMPTY;
    this.requestPrincipal = '';
    this.claims = null;
    return this;
  }

  /** Namespace from `sourcePrincipal` (`<td>/ns/<ns>/sa/<sa>`), '' when none. */
  sourceNamespace(): string {
    const p = this.sourcePrincipal;
    if (p !== this.nsFor) {
      this.nsFor = p;
      const at = p.indexOf('/ns/');
      if (at < 0) this.ns = '';
      else {
        const end = p.indexOf('/', at + 4);
        this.ns = end < 0 ? p.slice(at + 4) : p.slice(at + 4, end);
      }
    }
    return this.ns;
  }

  /** Family of `sourceIp`, after parsing it into `sourceAddr()`. */
  sourceFamily(): IpFamily {
    if (this.sourceIp !== this.srcFor) {
      this.srcFor = this.sourceIp;
      this.srcFamily = parseIpInto(this.sourceIp, this.srcAddr);
    }
    return this.srcFamily;
  }
  sourceAddr(): Uint32Array {
    return this.srcAddr;
  }

  /** Family of `remoteIp` (or `sourceIp` when unset), after parsing it into `remoteAddr()`. */
  remoteFamily(): IpFamily {
    const ip = this.remoteIp === '' ? this.sourceIp : this.remoteIp;
    if (ip !== this.remoteFor) {
      this.remoteFor = ip;
      this.rmFamily = parseIpInto(ip, this.rmAddr);
    }
    return this.rmFamily;
  }
  remoteAddr(): Uint32Array {
    return this.rmAddr;
  }

  destinationFamily(): IpFamily {
    if (this.destinationIp !== this.dstFor) {
      this.dstFor = this.destinationIp;
      this.dstFamily = parseIpInto(this.destinationIp, this.dstAddr);
    }
    return this.dstFamily;
  }
  destinationAddr(): Uint32Array {
    return this.dstAddr;
  }

  /** `host` in lower case (hosts match case-insensitively). */
  hostLower(): string {
    if (this.host !== this.hostFor) this.splitHost();
    return this.hostLow;
  }

  /** Lower-case `host` without a trailing `:port` (IPv6 literals keep their brackets). */
  hostWithoutPort(): string {
    if (this.host !== this.hostFor) this.splitHost();
    return this.hostBare;
  }

  private splitHost(): void {
    const h = this.host.toLowerCase();
    this.hostFor = this.host;
    this.hostLow = h;
    const colon = h.lastIndexOf(':');
    this.hostBare =
      colon > 0 && h.indexOf(']', colon) < 0 && (h.charCodeAt(0) === 91 || h.indexOf(':') === colon)
        ? h.slice(0, colon)
        : h;
  }

  /**
   * The value of header `lowerName`: one occurrence as is, several joined with `,` (as Envoy
   * does); undefined when absent.
   */
  header(lowerName: string): string | undefined {
    const hs = this.headers;
    let found: string | undefined;
    for (let i = 0; i + 1 < hs.length; i += 2) {
      const n = hs[i]!;
      if (n.length === lowerName.length && (n === lowerName || equalsLower(n, lowerName))) {
        found = found === undefined ? hs[i + 1]! : `${found},${hs[i + 1]!}`;
      }
    }
    return found;
  }
}

/** Case-insensitive (ASCII) equality of `s` with the lower-case `lower`, same length assumed. */
export function equalsLower(s: string, lower: string): boolean {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}
