/** When to renew a workload certificate and how long to wait after a failure. Pure. */

export interface RotationInput {
  /** When the agent received the certificate (local clock). */
  receivedAtMs: number;
  notAfterMs: number;
  nowMs: number;
  /** Fraction of the lifetime after which to renew (0.8). */
  ratio: number;
  /** Up to this fraction earlier, randomly, so a fleet started together does not renew together. */
  jitter: number;
  /** A random number in [0, 1). */
  random: number;
}

/**
 * Milliseconds until renewal: at `ratio - jitter * random` of the lifetime, counted from when
 * the certificate arrived rather than its notBefore (the CA back-dates notBefore for clock
 * skew, which would otherwise push short-lived renewals past expiry). Jitter only moves
 * renewal earlier, never past `ratio`. Never negative.
 */
export function rotationDelayMs(r: RotationInput): number {
  const lifetime = Math.max(0, r.notAfterMs - r.receivedAtMs);
  const fraction = Math.min(1, Math.max(0, r.ratio - r.jitter * r.random));
  return Math.max(0, Math.round(r.receivedAtMs + lifetime * fraction - r.nowMs));
}

/**
 * Exponential backoff with "equal jitter": after the n-th consecutive failure (n >= 1), wait
 * between half and all of min(max, initial * 2^(n-1)).
 */
export function backoffDelayMs(failures: number, initialMs: number, maxMs: number, random: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.round(base / 2 + (base / 2) * random);
}
