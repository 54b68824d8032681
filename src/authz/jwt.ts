/**
 * RequestAuthentication: find end-user JWTs in a request and verify them with `jose`.
 *
 * Semantics (Istio on Envoy's jwt_authn with `allow_missing`):
 * - no token in any configured location: the request passes unauthenticated (status 'none');
 *   an AuthorizationPolicy with `requestPrincipals` is what makes a token mandatory;
 * - a token that fails (malformed, unknown issuer, bad signature, expired, not yet valid, wrong
 *   audience, keys unavailable): 401 with Envoy's reason text (status 'invalid'). When several
 *   tokens are present every one must verify (stricter than Envoy's "any", never weaker);
 * - locations: `fromHeaders` (name + prefix), `fromParams`, `fromCookies`; a rule with none of
 *   them uses `Authorization: Bearer <token>` and `?access_token=`;
 * - the token is checked by the rule whose `issuer` equals its `iss` (a rule without issuer
 *   accepts any); `audiences` (any of) when set; 60 s clock skew, as Envoy;
 * - principal `<iss>/<sub>`; the verified claims are handed to the authorization engine;
 * - outputs: the token's header is removed unless `forwardOriginalToken`;
 *   `outputPayloadToHeader` gets the base64url payload; `outputClaimToHeaders` copies string,
 *   number and boolean claims (dotted names reach nested claims). These output headers are
 *   ALWAYS removed from the incoming request first, so a client cannot forge them (Envoy
 *   leaves client-sent copies in place when no token is present; we do not).
 *
 * Hot path: `authenticate` returns a shared outcome synchronously when the request carries no
 * token; only requests with a token pay for a promise and a signature check. Verified tokens
 * are cached (bounded, until `exp`), like Envoy's jwt_cache.
 */
import { decodeJwt, type JWSHeaderParameters, type JWTPayload, jwtVerify } from 'jose';
import type { JwtRule } from '../tables/security.js';
import { equalsLower } from './attributes.js';
import { InlineJwks, type KeySource, RemoteJwks, type RemoteJwksOptions } from './jwks.js';

export const JWT_CLOCK_SKEW_SECONDS = 60;

/** Envoy's jwt_authn failure texts (the 401 body). */
export const JWT_REASONS = {
  malformed: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  issuer: 'Jwt issuer is not configured',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  audience: 'Audiences in Jwt are not allowed',
  signature: 'Jwt verification fails',
  noKey: "Jwks doesn't have key to match kid or alg from Jwt",
  fetch: 'Jwks remote fetch is failed',
} as const;

export interface JwtOutcome {
  status: 'none' | 'ok' | 'invalid';
  /** 401 body when invalid; '' otherwise. */
  reason: string;
  /** `<iss>/<sub>` when ok. */
  principal: string;
  claims: JWTPayload | null;
  /** Lower-case header names to drop before forwarding (token header, forged output headers). */
  removeHeaders: readonly string[];
  /** Headers to set before forwarding, flat `[name, value, ...]` (replacing existing ones). */
  setHeaders: readonly string[];
}

const H = 0;
const P = 1;
const C = 2;

class Location {
  readonly kind: number;
  readonly name: string;
  readonly prefix: string;
  readonly rules: CompiledJwtRule[] = [];
  constructor(kind: number, name: string, prefix: string) {
    this.kind = kind;
    this.name = kind === H ? name.toLowerCase() : name;
    this.prefix = prefix;
  }
}

class CompiledJwtRule {
  readonly issuer: string;
  readonly audiences: string[] | undefined;
  readonly source: KeySource;
  readonly getKey: (h: JWSHeaderParameters) => Promise<never>;
  readonly forward: boolean;
  readonly payloadHeader: string;
  readonly claimHeaders: { header: string; path: string[] }[];

  constructor(r: JwtRule, source: KeySource) {
    this.issuer = r.issuer ?? '';
    this.audiences = r.audiences?.length ? r.audiences : undefined;
    this.source = source;
    this.getKey = (h) => source.resolve(h) as Promise<never>;
    this.forward = r.forwardOriginalToken ?? false;
    this.payloadHeader = r.outputPayloadToHeader?.toLowerCase() ?? '';
    this.claimHeaders = (r.outputClaimToHeaders ?? []).map((c) => ({
      header: c.header.toLowerCase(),
      path: c.claim.split('.'),
    }));
  }
}

interface Found {
  token: string;
  loc: Location;
}

interface CacheEntry {
  payload: JWTPayload;
  rule: CompiledJwtRule;
  expiresAtMs: number;
}

export interface RequestAuthenticatorOptions extends RemoteJwksOptions {
  /** Verified-token cache size (0 disables); default 100, Envoy's default. */
  cacheSize?: number;
}

export class RequestAuthenticator {
  private readonly rules: CompiledJwtRule[];
  private readonly locations: Location[];
  private readonly remotes = new Map<string, RemoteJwks>();
  private readonly outputHeaders: string[];
  private readonly none: JwtOutcome;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly cacheSize: number;

  /** Throws when an inline `jwks` cannot be parsed (validated earlier in the tables). */
  constructor(rules: readonly JwtRule[] = [], opts: RequestAuthenticatorOptions = {}) {
    this.cacheSize = opts.cacheSize ?? 100;
    this.rules = rules.map((r) => new CompiledJwtRule(r, this.keySource(r, opts)));
    const byKey = new Map<string, Location>();
    const add = (kind: number, name: string, prefix: string, rule: CompiledJwtRule) => {
      const key = `${kind}\0${kind === H ? name.toLowerCase() : name}\0${prefix}`;
      let loc = byKey.get(key);
      if (!loc) {
        loc = new Location(kind, name, prefix);
        byKey.set(key, loc);
      }
      loc.rules.push(rule);
    };
    rules.forEach((r, i) => {
      const rule = this.rules[i]!;
      const explicit =
        (r.fromHeaders?.length ?? 0) + (r.fromParams?.length ?? 0) + (r.fromCookies?.length ?? 0);
      if (explicit === 0) {
        add(H, 'authorization', 'Bearer ', rule);
        add(P, 'access_token', '', rule);
      }
      for (const h of r.fromHeaders ?? []) add(H, h.name, h.prefix ?? '', rule);
      for (const p of r.fromParams ?? []) add(P, p, '', rule);
      for (const c of r.fromCookies ?? []) add(C, c, '', rule);
    });
    this.locations = [...byKey.values()];
    const out = new Set<string>();
    for (const r of this.rules) {
      if (r.payloadHeader) out.add(r.payloadHeader);
      for (const c of r.claimHeaders) out.add(c.header);
    }
    this.outputHeaders = [...out];
    this.none = Object.freeze({
      status: 'none',
      reason: '',
      principal: '',
      claims: null,
      removeHeaders: Object.freeze([...this.outputHeaders]),
      setHeaders: Object.freeze([]),
    }) as JwtOutcome;
  }

  private keySource(r: JwtRule, opts: RemoteJwksOptions): KeySource {
    if (r.jwks) return new InlineJwks(r.jwks);
    const uri = r.jwksUri ?? '';
    let remote = this.remotes.get(uri);
    if (!remote) {
      remote = new RemoteJwks(uri, { ...opts, timeoutMs: r.timeoutMs ?? opts.timeoutMs ?? 5000 });
      this.remotes.set(uri, remote);
      void remote.refresh(); // fetch ahead so the first request does not wait (never rejects)
    }
    return remote;
  }

  /** Whether any rule applies (no rules: the proxy can skip this stage entirely). */
  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Remote key sets by URI (admin output, tests). */
  remoteKeySets(): ReadonlyMap<string, RemoteJwks> {
    return this.remotes;
  }

  /**
   * Authenticates one request: `headers` flat `[name, value, ...]`, `target` the request target
   * (path and query). Synchronous when no token is present.
   */
  authenticate(headers: readonly string[], target: string): JwtOutcome | Promise<JwtOutcome> {
    if (this.rules.length === 0) return this.none;
    const found = this.extract(headers, target);
    if (found === null) return this.none;
    return this.verifyAll(found);
  }

  /** Stops the refresh timers of remote key sets. */
  close(): void {
    for (const r of this.remotes.values()) r.close();
  }

  private extract(headers: readonly string[], target: string): Found[] | null {
    let found: Found[] | null = null;
    let query: URLSearchParams | null | undefined;
    for (const loc of this.locations) {
      let token: string | undefined;
      if (loc.kind === H) token = headerToken(headers, loc);
      else if (loc.kind === P) {
        if (query === undefined) {
          const q = target.indexOf('?');
          query = q < 0 ? null : new URLSearchParams(target.slice(q + 1));
        }
        token = query?.get(loc.name) ?? undefined;
      } else token = cookieToken(headers, loc.name);
      if (token) {
        found ??= [];
        found.push({ token, loc });
      }
    }
    return found;
  }

  private async verifyAll(found: Found[]): Promise<JwtOutcome> {
    let first: { payload: JWTPayload; rule: CompiledJwtRule; token: string } | null = null;
    const remove = new Set(this.outputHeaders);
    for (const f of found) {
      const r = await this.verify(f);
      if (typeof r === 'string') return invalid(r, this.none.removeHeaders);
      if (!r.rule.forward && f.loc.kind === H) remove.add(f.loc.name);
      first ??= { payload: r.payload, rule: r.rule, token: f.token };
    }
    const { payload, rule, token } = first!;
    const set: string[] = [];
    if (rule.payloadHeader)
      set.push(rule.payloadHeader, token.slice(token.indexOf('.') + 1, token.lastIndexOf('.')));
    for (const c of rule.claimHeaders) {
      const v = claimAt(payload, c.path);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
        set.push(c.header, String(v));
    }
    return {
      status: 'ok',
      reason: '',
      principal: `${payload.iss ?? ''}/${payload.sub ?? ''}`,
      claims: payload,
      removeHeaders: [...remove],
      setHeaders: set,
    };
  }

  /** The verified payload and rule, or the failure reason. */
  private async verify(f: Found): Promise<{ payload: JWTPayload; rule: CompiledJwtRule } | string> {
    const hit = this.cache.get(f.token);
    if (hit && f.loc.rules.includes(hit.rule)) {
      if (hit.expiresAtMs > Date.now()) return hit;
      this.cache.delete(f.token);
    }
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(f.token);
    } catch {
      return JWT_REASONS.malformed;
    }
    const rule = f.loc.rules.find((r) => r.issuer === '' || r.issuer === unverified.iss);
    if (!rule) return JWT_REASONS.issuer;
    let payload: JWTPayload;
    try {
      payload = await verifyWith(f.token, rule);
    } catch (err) {
      return reasonOf(err);
    }
    this.remember(f.token, payload, rule);
    return { payload, rule };
  }

  private remember(token: string, payload: JWTPayload, rule: CompiledJwtRule): void {
    if (this.cacheSize <= 0) return;
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY;
    this.cache.set(token, { payload, rule, expiresAtMs: exp + JWT_CLOCK_SKEW_SECONDS * 1000 });
  }
}

async function verifyWith(token: string, rule: CompiledJwtRule): Promise<JWTPayload> {
  const opts = {
    ...(rule.issuer ? { issuer: rule.issuer } : {}),
    ...(rule.audiences ? { audience: rule.audiences } : {}),
    clockTolerance: JWT_CLOCK_SKEW_SECONDS,
  };
  try {
    return (await jwtVerify(token, rule.getKey, opts)).payload;
  } catch (err) {
    // Several keys match a token without `kid`: try each (Envoy tries every key).
    if ((err as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err;
    let last: unknown = err;
    for await (const key of err as AsyncIterable<Parameters<typeof jwtVerify>[1] & object>) {
      try {
        return (await jwtVerify(token, key, opts)).payload;
      } catch (e) {
        last = e;
      }
    }
    throw last;
  }
}

function reasonOf(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return JWT_REASONS.expired;
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf' || e.claim === 'iat') return JWT_REASONS.notYetValid;
      if (e.claim === 'aud') return JWT_REASONS.audience;
      if (e.claim === 'iss') return JWT_REASONS.issuer;
      return JWT_REASONS.signature;
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return JWT_REASONS.noKey;
    case 'JWKS_FETCH_FAILED':
      return JWT_REASONS.fetch;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return JWT_REASONS.malformed;
    default:
      return JWT_REASONS.signature;
  }
}

function invalid(reason: string, remove: readonly string[]): JwtOutcome {
  return { status: 'invalid', reason, principal: '', claims: null, removeHeaders: remove, setHeaders: [] };
}

function headerToken(headers: readonly string[], loc: Location): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length !== loc.name.length || !equalsLower(n, loc.name)) continue;
    const v = headers[i + 1]!;
    if (loc.prefix === '') return v.trim() || undefined;
    if (
      v.length > loc.prefix.length &&
      v.slice(0, loc.prefix.length).toLowerCase() === loc.prefix.toLowerCase()
    )
      return v.slice(loc.prefix.length).trim() || undefined;
  }
  return undefined;
}

function cookieToken(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length !== 6 || !equalsLower(n, 'cookie')) continue;
    for (const part of headers[i + 1]!.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
    }
  }
  return undefined;
}

function claimAt(payload: JWTPayload, path: readonly string[]): unknown {
  let v: unknown = payload;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

function hasAny(headers: readonly string[], lowerNames: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    for (let j = 0; j < lowerNames.length; j++) {
      const l = lowerNames[j]!;
      if (n.length === l.length && equalsLower(n, l)) return true;
    }
  }
  return false;
}

/** `www-authenticate` value of a 401, as Envoy writes it. */
export function wwwAuthenticate(realm: string): string {
  return `Bearer realm="${realm}", error="invalid_token"`;
}

/**
 * Applies an outcome's header edits to flat request headers; returns a new array (or the same
 * one when there is nothing to change).
 */
export function applyJwtHeaders(headers: readonly string[], outcome: JwtOutcome): readonly string[] {
  const remove = outcome.removeHeaders;
  const set = outcome.setHeaders;
  if (set.length === 0 && !hasAny(headers, remove)) return headers;
  const drop = new Set(remove);
  for (let i = 0; i < set.length; i += 2) drop.add(set[i]!);
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!drop.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  for (let i = 0; i < set.length; i++) out.push(set[i]!);
  return out;
}
