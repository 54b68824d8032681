/**
 * The original client address of a request (`remote.ip`, `remoteIpBlocks`), as Envoy's HTTP
 * connection manager derives it on an Istio sidecar's inbound listener (use_remote_address
 * false, xff_num_trusted_hops = N): the (N+1)-th address from the right of X-Forwarded-For;
 * the connection's peer when the header has fewer entries or that entry is not an IP address.
 * N is ProxyConfig `gatewayTopology.numTrustedProxies` (mesh `defaultConfig` overlaid with the
 * pod's `proxy.istio.io/config`, which the proxy receives as env PROXY_CONFIG).
 */
import { isIP } from 'node:net';
import { fromProxyConfigEnv, PROXY_CONFIG_ENV } from '../api/proxy-config.js';

/** Largest accepted numTrustedProxies (a longer chain of proxies is a configuration mistake). */
const MAX_TRUSTED_HOPS = 64;

/**
 * The trusted client address from an X-Forwarded-For value (several headers joined with ','),
 * or '' when none can be taken from it (the caller uses the connection's peer address).
 * Scans from the right without splitting the whole header.
 */
export function clientAddressFromXff(xff: string | undefined, numTrustedHops: number): string {
  if (xff === undefined || xff === '') return '';
  let end = xff.length;
  for (let skip = numTrustedHops; ; skip--) {
    const comma = xff.lastIndexOf(',', end - 1);
    if (skip === 0) {
      const entry = xff.slice(comma + 1, end).trim();
      return isIP(entry) !== 0 ? entry : '';
    }
    if (comma < 0) return ''; // fewer than N+1 entries
    end = comma;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * `gatewayTopology.numTrustedProxies` of a ProxyConfig object (0 when absent). Throws
 * `gatewayTopology.numTrustedProxies: ...` naming what is wrong.
 */
export function numTrustedProxiesFromProxyConfig(pc: unknown): number {
  if (!isRecord(pc)) return 0;
  const gt = pc.gatewayTopology;
  if (gt === undefined || gt === null) return 0;
  if (!isRecord(gt)) throw new Error('gatewayTopology: expected a mapping (numTrustedProxies, ...)');
  const n = gt.numTrustedProxies;
  if (n === undefined || n === null) return 0;
  const v = typeof n === 'string' && /^\d+$/.test(n.trim()) ? Number(n) : n;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TRUSTED_HOPS)
    throw new Error(
      `gatewayTopology.numTrustedProxies: expected an integer from 0 to ${MAX_TRUSTED_HOPS}, got ${JSON.stringify(n)}`,
    );
  return v;
}

/** The same from env PROXY_CONFIG (JSON or YAML); errors start with the variable's name. */
export function numTrustedProxiesFromEnv(value: string | undefined, name = PROXY_CONFIG_ENV): number {
  return fromProxyConfigEnv(value, numTrustedProxiesFromProxyConfig, name) ?? 0;
}
