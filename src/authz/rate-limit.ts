/**
 * Local rate limiting (Envoy's local_ratelimit filter): a token bucket per workload and per
 * route name, in this process. A route that has its own bucket uses only that bucket (Envoy's
 * per-route config replaces the listener-level one); other routes share the workload bucket.
 *
 * Buckets refill lazily from a monotonic clock: `tokensPerFill` tokens at every elapsed
 * `fillIntervalMs` boundary, capped at `maxTokens`; nothing runs between requests (no timers).
 * A limited request is answered 429 with body `local_rate_limited`, header
 * `x-envoy-ratelimited: true`, the draft-03 `x-ratelimit-*` headers Envoy adds with
 * `enable_x_ratelimit_headers`, and response flag `RL`.
 */
import type { RateLimitSettings, TokenBucketSettings } from '../tables/security.js';

export const RATE_LIMITED_STATUS = 429;
export const RATE_LIMITED_BODY = 'local_rate_limited';
export const RATE_LIMITED_FLAG = 'RL';

export type Clock = () => number;
const monotonic: Clock = () => performance.now();

export class TokenBucket {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  tokens: number;
  /** Clock time of the last fill boundary. */
  private lastFill: number;

  constructor(s: TokenBucketSettings, now: number) {
    this.maxTokens = s.maxTokens;
    this.tokensPerFill = s.tokensPerFill;
    this.fillIntervalMs = s.fillIntervalMs;
    this.tokens = s.maxTokens;
    this.lastFill = now;
  }

  sameSettings(s: TokenBucketSettings): boolean {
    return (
      s.maxTokens === this.maxTokens &&
      s.tokensPerFill === this.tokensPerFill &&
      s.fillIntervalMs === this.fillIntervalMs
    );
  }

  private refill(now: number): void {
    const elapsed = now - this.lastFill;
    if (elapsed < this.fillIntervalMs) return;
    const fills = Math.floor(elapsed / this.fillIntervalMs);
    this.lastFill += fills * this.fillIntervalMs;
    this.tokens = Math.min(this.maxTokens, this.tokens + fills * this.tokensPerFill);
  }

  /** Takes one token if available. */
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** Milliseconds until the next fill. */
  msToNextFill(now: number): number {
    return Math.max(0, this.lastFill + this.fillIntervalMs - now);
  }
}

/** Reusable result of `LocalRateLimiter.check`. */
export class RateLimitDecision {
  limited = false;
  /** False when no bucket applies (no headers to add). */
  applied = false;
  /** 'route' or 'workload' ('' when none applied). */
  scope = '';
  limit = 0;
  remaining = 0;
  /** Seconds until the next refill, rounded up (x-ratelimit-reset). */
  resetSeconds = 0;
}

export class LocalRateLimiter {
  private workload: TokenBucket | null = null;
  private routes = new Map<string, TokenBucket>();
  private readonly clock: Clock;

  constructor(settings: RateLimitSettings | undefined, clock: Clock = monotonic) {
    this.clock = clock;
    this.update(settings);
  }

  /** True when no bucket is configured (the proxy can skip the stage). */
  get empty(): boolean {
    return this.workload === null && this.routes.size === 0;
  }

  /**
   * Applies new settings (a new config version). Buckets whose settings did not change keep
   * their state, so a config push does not hand out a fresh burst.
   */
  update(settings: RateLimitSettings | undefined): void {
    const now = this.clock();
    const w = settings?.workload;
    this.workload = w ? (this.workload?.sameSettings(w) ? this.workload : new TokenBucket(w, now)) : null;
    const next = new Map<string, TokenBucket>();
    for (const [name, s] of Object.entries(settings?.routes ?? {})) {
      const old = this.routes.get(name);
      next.set(name, old?.sameSettings(s) ? old : new TokenBucket(s, now));
    }
    this.routes = next;
  }

  /** Takes a token for a request on route `routeName` ('' = unnamed). Writes into `out`. */
  check(routeName: string, out: RateLimitDecision = new RateLimitDecision()): RateLimitDecision {
    const route = routeName === '' ? undefined : this.routes.get(routeName);
    const bucket = route ?? this.workload;
    if (!bucket) {
      out.limited = false;
      out.applied = false;
      out.scope = '';
      out.limit = 0;
      out.remaining = 0;
      out.resetSeconds = 0;
      return out;
    }
    const now = this.clock();
    out.applied = true;
    out.scope = route ? 'route' : 'workload';
    out.limited = !bucket.tryTake(now);
    out.limit = bucket.maxTokens;
    out.remaining = Math.floor(bucket.tokens);
    out.resetSeconds = Math.ceil(bucket.msToNextFill(now) / 1000);
    return out;
  }
}

/**
 * Response headers for a decision, flat `[name, value, ...]`: the x-ratelimit-* trio on every
 * response a bucket applied to, plus `x-envoy-ratelimited` on a 429.
 */
export function rateLimitHeaders(d: RateLimitDecision): string[] {
  if (!d.applied) return [];
  const h = [
    'x-ratelimit-limit',
    String(d.limit),
    'x-ratelimit-remaining',
    String(d.remaining),
    'x-ratelimit-reset',
    String(d.resetSeconds),
  ];
  if (d.limited) h.push('x-envoy-ratelimited', 'true');
  return h;
}
