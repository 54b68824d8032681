/**
 * How users configure local rate limits: annotations on the workload (pod template), read by
 * the compiler and turned into `security.rateLimit` of the compiled tables.
 *
 *   isthmus.io/local-rate-limit: "100/s"                   # whole workload, inbound
 *   isthmus.io/local-rate-limit: "600/1m,burst=50"
 *   isthmus.io/local-rate-limit-routes: "reviews-v2=10/s; ratings=5/1s,burst=20"
 *
 * `<tokens>/<interval>`: `tokens` are added every `interval` (`s`, `m`, `h` or a duration such
 * as `500ms`, `10s`, `1m30s`); the bucket holds `burst` tokens (default: `tokens`). Route
 * names are VirtualService `http[].name` values; a route with its own limit does not also use
 * the workload limit (Envoy's per-route override).
 */
import type { RateLimitSettings, TokenBucketSettings } from '../tables/security.js';
import { parseDuration } from '../validation/primitives.js';

export const RATE_LIMIT_ANNOTATION = 'isthmus.io/local-rate-limit';
export const ROUTE_RATE_LIMIT_ANNOTATION = 'isthmus.io/local-rate-limit-routes';

const UNIT: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `100/s` or `600/1m,burst=50`; returns the bucket or the reason it is invalid. */
export function parseRateLimit(text: string): TokenBucketSettings | string {
  const m = /^\s*(\d+)\s*\/\s*([0-9a-zµ.]+)\s*(?:,\s*burst\s*=\s*(\d+)\s*)?$/.exec(text);
  if (!m)
    return `${JSON.stringify(text)} is not a rate limit: write <tokens>/<interval>[,burst=<n>], e.g. 100/s`;
  const tokens = Number(m[1]);
  const intervalText = m[2]!;
  const interval = UNIT[intervalText] ?? parseDuration(intervalText);
  if (tokens < 1) return `${JSON.stringify(text)}: tokens must be at least 1`;
  if (interval === undefined || !Number.isInteger(interval) || interval < 1)
    return `${JSON.stringify(text)}: interval must be s, m, h or a whole number of milliseconds such as 500ms`;
  const burst = m[3] === undefined ? tokens : Number(m[3]);
  if (burst < 1) return `${JSON.stringify(text)}: burst must be at least 1`;
  return { maxTokens: burst, tokensPerFill: tokens, fillIntervalMs: interval };
}

export interface RateLimitConfigResult {
  settings: RateLimitSettings | undefined;
  /** `<annotation>: <reason>` lines; invalid entries are left out of `settings`. */
  errors: string[];
}

/** Reads both annotations; absent annotations give `settings: undefined`. */
export function rateLimitFromAnnotations(
  annotations: Readonly<Record<string, string>> = {},
): RateLimitConfigResult {
  const errors: string[] = [];
  const settings: RateLimitSettings = {};
  const w = annotations[RATE_LIMIT_ANNOTATION];
  if (w !== undefined) {
    const r = parseRateLimit(w);
    if (typeof r === 'string') errors.push(`${RATE_LIMIT_ANNOTATION}: ${r}`);
    else settings.workload = r;
  }
  const routes = annotations[ROUTE_RATE_LIMIT_ANNOTATION];
  if (routes !== undefined) {
    for (const entry of routes.split(';')) {
      if (entry.trim() === '') continue;
      const eq = entry.indexOf('=');
      const name = eq < 0 ? '' : entry.slice(0, eq).trim();
      if (name === '') {
        errors.push(
          `${ROUTE_RATE_LIMIT_ANNOTATION}: ${JSON.stringify(entry.trim())} must be <route>=<limit>`,
        );
        continue;
      }
      const r = parseRateLimit(entry.slice(eq + 1));
      if (typeof r === 'string') errors.push(`${ROUTE_RATE_LIMIT_ANNOTATION}: route ${name}: ${r}`);
      else {
        settings.routes ??= {};
        settings.routes[name] = r;
      }
    }
  }
  return { settings: settings.workload || settings.routes ? settings : undefined, errors };
}
