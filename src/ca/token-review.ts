/**
 * Who is calling: the projected service-account token, checked by the apiserver's TokenReview
 * API (as istiod's KubeJWTAuthenticator does). Successful reviews are cached briefly, keyed by
 * a hash of the token, so a burst of pods starting at once costs one review per token; the
 * cache never outlives the token's own expiry. Concurrent requests with one token share one
 * in-flight review.
 */
import { createHash } from 'node:crypto';
import type { AuthenticationV1Api } from '@kubernetes/client-node';
import { describeApiError } from '../controller/kube.js';
import { TOKEN_AUDIENCE } from '../inject/constants.js';
import { CaError } from './errors.js';
import { type ServiceAccountRef, serviceAccountFromUsername } from './spiffe.js';

/** The part of a TokenReview status the CA reads. */
export interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; groups?: string[] };
}

/** Performs one TokenReview; throws only when the apiserver could not be asked. */
export type TokenReviewFn = (token: string, audiences: string[]) => Promise<TokenReviewStatus>;

export function kubeTokenReview(authn: AuthenticationV1Api): TokenReviewFn {
  return async (token, audiences) => {
    const review = await authn.createTokenReview({ body: { spec: { token, audiences } } });
    return review.status ?? {};
  };
}

interface JwtPeek {
  aud: string[];
  exp?: number;
}

/**
 * The (unverified) audience and expiry of a JWT. Only used to reject early with a precise
 * message and to bound the cache; acceptance always comes from the apiserver.
 */
export function peekJwt(token: string): JwtPeek | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof claims !== 'object' || claims === null) return undefined;
    const aud =
      typeof claims.aud === 'string'
        ? [claims.aud]
        : Array.isArray(claims.aud)
          ? claims.aud.filter((a): a is string => typeof a === 'string')
          : [];
    return { aud, ...(typeof claims.exp === 'number' ? { exp: claims.exp } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * The service account a TokenReview status proves, or a CaError saying why not. Pure.
 * Mirrors istiod: authenticated, audience intersects ours, in group system:serviceaccounts,
 * username system:serviceaccount:<ns>:<sa>.
 */
export function identityFromReview(status: TokenReviewStatus, audiences: string[]): ServiceAccountRef {
  if (status.error || status.authenticated !== true) {
    const why = status.error ? `: ${status.error}` : '';
    throw new CaError('CA_TOKEN_REJECTED', `the apiserver did not authenticate the token${why}`);
  }
  const reviewed = status.audiences ?? [];
  if (!reviewed.some((a) => audiences.includes(a)))
    throw new CaError(
      'CA_TOKEN_AUDIENCE',
      `token is valid for audiences [${reviewed.join(', ')}], not [${audiences.join(', ')}]`,
    );
  const username = status.user?.username ?? '';
  const groups = status.user?.groups ?? [];
  const sa = serviceAccountFromUsername(username);
  if (!sa || !groups.includes('system:serviceaccounts'))
    throw new CaError(
      'CA_NOT_SERVICE_ACCOUNT',
      `token belongs to "${username}", not to a service account (system:serviceaccount:<ns>:<name>)`,
    );
  return sa;
}

export interface TokenAuthenticatorOptions {
  review: TokenReviewFn;
  /** Audiences the token must carry (default [istio-ca]). */
  audiences?: string[];
  /** How long a successful review is reused (default 60 s; 0 disables caching). */
  cacheTtlMs?: number;
  /** Bound on cached tokens; the oldest entries go first. */
  maxEntries?: number;
  now?: () => number;
}

interface CacheEntry {
  identity: ServiceAccountRef;
  expiresAt: number;
}

export class TokenAuthenticator {
  readonly audiences: string[];
  /** Reviews sent to the apiserver, and requests answered from the cache (for tests/metrics). */
  readonly stats = { reviews: 0, cacheHits: 0 };
  private readonly review: TokenReviewFn;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<ServiceAccountRef>>();

  constructor(opts: TokenAuthenticatorOptions) {
    this.review = opts.review;
    this.audiences = opts.audiences ?? [TOKEN_AUDIENCE];
    this.ttlMs = opts.cacheTtlMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** The service account the token proves; throws CaError (401, or 503 when the apiserver is down). */
  async authenticate(token: string): Promise<ServiceAccountRef> {
    const peek = peekJwt(token);
    if (!peek) throw new CaError('CA_TOKEN_MALFORMED', 'bearer token is not a JWT');
    const nowMs = this.now();
    if (peek.exp !== undefined && peek.exp * 1000 <= nowMs)
      throw new CaError('CA_TOKEN_EXPIRED', `token expired at ${new Date(peek.exp * 1000).toISOString()}`);
    if (!peek.aud.some((a) => this.audiences.includes(a)))
      throw new CaError(
        'CA_TOKEN_AUDIENCE',
        `token audiences [${peek.aud.join(', ')}] do not include ${this.audiences.join(' or ')}; ` +
          `present a projected service-account token requested with audience ${this.audiences[0]}`,
      );

    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > nowMs) {
      this.stats.cacheHits++;
      return hit.identity;
    }
    if (hit) this.cache.delete(key);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const p = this.doReview(token, key, peek.exp).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  private async doReview(token: string, key: string, exp: number | undefined): Promise<ServiceAccountRef> {
    this.stats.reviews++;
    let status: TokenReviewStatus;
    try {
      status = await this.review(token, this.audiences);
    } catch (err) {
      throw new CaError(
        'CA_AUTH_UNAVAILABLE',
        `could not verify the token with the apiserver (TokenReview failed: ${describeApiError(err)}); retry later`,
      );
    }
    const identity = identityFromReview(status, this.audiences);
    if (this.ttlMs > 0) {
      const now = this.now();
      const expiresAt = Math.min(now + this.ttlMs, exp !== undefined ? exp * 1000 : Number.POSITIVE_INFINITY);
      if (this.cache.size >= this.maxEntries) this.evict(now);
      this.cache.set(key, { identity, expiresAt });
    }
    return identity;
  }

  private evict(now: number): void {
    for (const [k, e] of this.cache) if (e.expiresAt <= now) this.cache.delete(k);
    // Maps iterate in insertion order: drop the oldest until there is room.
    for (const k of this.cache.keys()) {
      if (this.cache.size < this.maxEntries) break;
      this.cache.delete(k);
    }
  }
}
