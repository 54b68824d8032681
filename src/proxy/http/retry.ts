/**
 * Retry decisions (Envoy semantics). `attempts` counts retries after the first try.
 * - 5xx: any 5xx response, and any reset/connect failure/per-try timeout;
 * - gateway-error: 502/503/504 responses, and resets/connect failures/timeouts;
 * - reset: resets, connect failures and per-try timeouts (no response at all);
 * - connect-failure: connection establishment failures only;
 * - refused-stream: an HTTP/2 upstream refused the stream (REFUSED_STREAM: never processed);
 * - retriable-4xx: 409; retriable-status-codes: the listed codes.
 */
import { type CompiledRetry, RetryOnBit } from '../router/compiled.js';

export const FailureKind = {
  ConnectFailure: 1,
  Reset: 2,
  PerTryTimeout: 3,
  /** A reset with REFUSED_STREAM (HTTP/2): also a Reset for flags and stats. */
  RefusedStream: 4,
} as const;

export function retriableStatus(r: CompiledRetry, status: number): boolean {
  if (status >= 500 && r.on & RetryOnBit.status5xx) return true;
  if ((status === 502 || status === 503 || status === 504) && r.on & RetryOnBit.gatewayError) return true;
  if (status === 409 && r.on & RetryOnBit.retriable4xx) return true;
  return (r.on & RetryOnBit.statusCodes) !== 0 && r.codes.has(status);
}

export function retriableFailure(r: CompiledRetry, kind: number): boolean {
  const any = RetryOnBit.status5xx | RetryOnBit.gatewayError | RetryOnBit.reset;
  if (r.on & any) return true;
  if (kind === FailureKind.RefusedStream) return (r.on & RetryOnBit.refusedStream) !== 0;
  return kind === FailureKind.ConnectFailure && (r.on & RetryOnBit.connectFailure) !== 0;
}

/** Fully jittered exponential backoff: uniform in [0, min((2^n - 1) * base, max)), n >= 1. */
export function backoffMs(r: CompiledRetry, retryNumber: number): number {
  const ceiling = Math.min((2 ** Math.min(retryNumber, 30) - 1) * r.backoffBaseMs, r.backoffMaxMs);
  return Math.floor(Math.random() * ceiling);
}
