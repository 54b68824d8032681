/**
 * Istio's retry policy conversion (route/retry/retry.go): no policy = the mesh default
 * (2 retries on connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes
 * with 503); `attempts: 0` disables retries; a given `retryOn` replaces the default list, and
 * bare status codes in it become retriable status codes.
 */
import type { HTTPRoute } from '../api/networking/virtual-service.js';
import { RETRY_ON, type RetryOn, type RetryPolicy } from '../tables/index.js';
import { durationMs } from './durations.js';
import type { Warn } from './warnings.js';

const DEFAULT_RETRY_ON: RetryOn[] = [
  'connect-failure',
  'refused-stream',
  'unavailable',
  'cancelled',
  'retriable-status-codes',
];
const KNOWN = new Set<string>(RETRY_ON);

export function defaultRetries(): RetryPolicy {
  return { attempts: 2, retryOn: [...DEFAULT_RETRY_ON], retriableStatusCodes: [503] };
}

export function convertRetries(
  r: NonNullable<HTTPRoute['retries']>,
  where: string,
  warn: Warn,
): RetryPolicy | undefined {
  const attempts = r.attempts ?? 0;
  if (attempts <= 0) return undefined;
  const out: RetryPolicy = defaultRetries();
  out.attempts = attempts;
  if (r.retryOn) {
    const on: RetryOn[] = [];
    const codes: number[] = [];
    for (const raw of r.retryOn.split(',')) {
      const part = raw.trim();
      if (!part) continue;
      if (/^\d{3}$/.test(part) && Number(part) >= 100 && Number(part) <= 599) codes.push(Number(part));
      else if (KNOWN.has(part)) on.push(part as RetryOn);
      else warn(where, `retries.retryOn "${part}" is not supported by the proxy yet; ignored`);
    }
    if (codes.length && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
    out.retryOn = on;
    if (codes.length) out.retriableStatusCodes = codes;
    else delete out.retriableStatusCodes;
  }
  const perTry = durationMs(r.perTryTimeout);
  if (perTry !== undefined) out.perTryTimeoutMs = perTry;
  const backoff = durationMs(r.backoff);
  if (backoff !== undefined) out.backoffBaseMs = backoff;
  return out;
}
