/**
 * Envoy response flags as a bit set, so a request accumulates them without allocating; the
 * printed form (`UF,URX`) is cached per combination for metrics and access logs.
 */
export const Flag = {
  NR: 1 << 0, // no route
  UH: 1 << 1, // no healthy upstream
  UF: 1 << 2, // upstream connection failure
  UO: 1 << 3, // upstream overflow (circuit breaker)
  URX: 1 << 4, // retry limit exceeded
  UT: 1 << 5, // upstream request timeout
  DI: 1 << 6, // delay injected
  FI: 1 << 7, // fault (abort) injected
  UC: 1 << 8, // upstream connection termination
  DC: 1 << 9, // downstream connection termination
  RL: 1 << 10, // rate limited (reserved)
  UAEX: 1 << 11, // unauthorized by external authz (reserved)
} as const;

// Envoy prints flags in its own fixed order; we keep one order so label values are stable.
const ORDER: ReadonlyArray<readonly [number, string]> = [
  [Flag.UH, 'UH'],
  [Flag.UF, 'UF'],
  [Flag.UO, 'UO'],
  [Flag.NR, 'NR'],
  [Flag.URX, 'URX'],
  [Flag.UT, 'UT'],
  [Flag.DC, 'DC'],
  [Flag.UC, 'UC'],
  [Flag.DI, 'DI'],
  [Flag.FI, 'FI'],
  [Flag.RL, 'RL'],
  [Flag.UAEX, 'UAEX'],
];

const cache = new Map<number, string>();

/** `-` for none, else comma-separated names; cached per bit combination. */
export function flagsString(bits: number): string {
  let s = cache.get(bits);
  if (s === undefined) {
    const names: string[] = [];
    for (const [bit, name] of ORDER) if (bits & bit) names.push(name);
    s = names.length ? names.join(',') : '-';
    cache.set(bits, s);
  }
  return s;
}

/** Envoy's local-reply bodies, kept identical because clients and tests grep for them. */
export const Body = {
  noHealthyUpstream: 'no healthy upstream',
  overflow: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
  connectFailure:
    'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  reset: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
  timeout: 'upstream request timeout',
  faultAbort: 'fault filter abort',
} as const;
