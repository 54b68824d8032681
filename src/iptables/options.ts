/**
 * Capture options: the istio-iptables flags (`-p -z -u -g -m -i -x -b -d -o`) turned into a
 * validated object. Parsing is pure so the CLI, the injector and tests share it; every error
 * names the flag and the offending value, because these strings usually come from pod
 * annotations a user typed (`traffic.sidecar.istio.io/excludeOutboundIPRanges` and friends).
 */
import { type Cidr, parseCidr } from './cidr.js';

export type InterceptionMode = 'REDIRECT';

export interface CaptureOptions {
  /** -p: where outbound TCP is redirected (the proxy's outbound listener). */
  outboundPort: number;
  /** -z: where inbound TCP is redirected (the proxy's inbound listener). */
  inboundPort: number;
  /** -u: proxy UIDs whose traffic is never captured (else the proxy would loop into itself). */
  proxyUids: number[];
  /** -g: proxy GIDs, same role as the UIDs; defaults to -u. */
  proxyGids: number[];
  /** -m: only REDIRECT for now. */
  mode: InterceptionMode;
  /** -b: inbound ports to capture; '*' = all, [] = inbound capture off. */
  inboundPorts: '*' | number[];
  /** -d: inbound ports never captured (only meaningful with -b '*'). */
  inboundExcludePorts: number[];
  /** -i: outbound ranges to capture; '*' = all, [] = outbound capture off. */
  outboundIncludeRanges: '*' | Cidr[];
  /** -x: outbound ranges never captured. */
  outboundExcludeRanges: Cidr[];
  /** -o: outbound destination ports never captured. */
  outboundExcludePorts: number[];
  /** Also generate the ip6tables variant. */
  ipv6: boolean;
}

/** The raw flag values, as strings, keyed by istio-iptables' short flag letter. */
export interface CaptureFlags {
  p?: string;
  z?: string;
  u?: string;
  g?: string;
  m?: string;
  i?: string;
  x?: string;
  b?: string;
  d?: string;
  o?: string;
  ipv6?: boolean;
}

/** A bad flag value; `flag` is the short form (e.g. `-b`), `value` what was given. */
export class CaptureFlagError extends Error {
  constructor(
    readonly flag: string,
    readonly value: string,
    reason: string,
  ) {
    super(`invalid ${flag} ${JSON.stringify(value)}: ${reason}`);
    this.name = 'CaptureFlagError';
  }
}

/** Istio's injector defaults (the istio-init container's command line). */
export const DEFAULT_FLAGS = { p: '15001', z: '15006', u: '1337', m: 'REDIRECT' } as const;

export function parseCaptureFlags(flags: CaptureFlags): CaptureOptions {
  const outboundPort = parsePort('-p', flags.p ?? DEFAULT_FLAGS.p);
  const inboundPort = parsePort('-z', flags.z ?? DEFAULT_FLAGS.z);
  const proxyUids = parseIds('-u', flags.u ?? DEFAULT_FLAGS.u);
  // Istio: "-g ... (same default value as -u param)".
  const proxyGids = flags.g === undefined || flags.g.trim() === '' ? proxyUids : parseIds('-g', flags.g);
  const mode = parseMode(flags.m ?? DEFAULT_FLAGS.m);
  const inboundPorts = isWildcard(flags.b) ? '*' : parsePortList('-b', flags.b ?? '');
  const inboundExcludePorts = parsePortList('-d', flags.d ?? '');
  const outboundIncludeRanges = isWildcard(flags.i) ? '*' : parseCidrList('-i', flags.i ?? '');
  const outboundExcludeRanges = parseCidrList('-x', flags.x ?? '');
  const outboundExcludePorts = parsePortList('-o', flags.o ?? '');
  return {
    outboundPort,
    inboundPort,
    proxyUids,
    proxyGids,
    mode,
    inboundPorts,
    inboundExcludePorts,
    outboundIncludeRanges,
    outboundExcludeRanges,
    outboundExcludePorts,
    ipv6: flags.ipv6 ?? false,
  };
}

function isWildcard(value: string | undefined): boolean {
  return value !== undefined && value.trim() === '*';
}

/** Comma-separated list; blanks (`''`, `a,,b`, trailing commas) are ignored like Istio does. */
function items(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function parsePort(flag: string, value: string): number {
  const text = value.trim();
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new CaptureFlagError(flag, value, 'expected a TCP port number between 1 and 65535');
  }
  return port;
}

function parsePortList(flag: string, value: string): number[] {
  if (value.trim() === '*') {
    throw new CaptureFlagError(flag, value, "'*' is not allowed here; give a comma-separated list of ports");
  }
  const ports: number[] = [];
  for (const item of items(value)) {
    const text = item;
    if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
      throw new CaptureFlagError(
        flag,
        value,
        `${JSON.stringify(item)} is not a port number between 1 and 65535`,
      );
    }
    if (!ports.includes(Number(text))) ports.push(Number(text));
  }
  return ports;
}

function parseIds(flag: string, value: string): number[] {
  const ids = items(value);
  if (ids.length === 0) throw new CaptureFlagError(flag, value, 'expected a numeric id (e.g. 1337)');
  return ids.map((id) => {
    // Numeric only: names would need the pod's /etc/passwd, which the init container lacks.
    if (!/^\d{1,10}$/.test(id) || Number(id) > 0xfffffffe) {
      throw new CaptureFlagError(flag, value, `${JSON.stringify(id)} is not a numeric id`);
    }
    return Number(id);
  });
}

function parseMode(value: string): InterceptionMode {
  const mode = value.trim().toUpperCase();
  if (mode === 'REDIRECT') return 'REDIRECT';
  if (mode === 'TPROXY') {
    throw new CaptureFlagError('-m', value, 'TPROXY interception is not supported yet; use REDIRECT');
  }
  throw new CaptureFlagError('-m', value, 'expected REDIRECT (TPROXY is not supported yet)');
}

function parseCidrList(flag: string, value: string): Cidr[] {
  if (value.trim() === '*') {
    throw new CaptureFlagError(flag, value, "'*' is not allowed here; give a comma-separated list of CIDRs");
  }
  return items(value).map((item) => {
    const cidr = parseCidr(item);
    if (!cidr) {
      // Istio silently drops bad ranges; a typo then captures traffic the user meant to exclude.
      throw new CaptureFlagError(
        flag,
        value,
        `${JSON.stringify(item)} is not a CIDR (e.g. 10.0.0.0/8, 10.1.2.3/32)`,
      );
    }
    return cidr;
  });
}
