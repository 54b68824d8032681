/**
 * Minimal CIDR parsing for capture flags: enough to validate a range, tell IPv4 from IPv6 (each
 * family goes to its own restore input) and check whether a range covers loopback (which changes
 * the loopback rules, as in istio-iptables). Kept dependency-free on purpose.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** The address as written (lower-cased); iptables masks host bits itself. */
  address: string;
  prefix: number;
  /** `address/prefix`, the form written into rules. */
  text: string;
}

/** Parses `a.b.c.d/n` or `x::y/n`; returns undefined when it is not a CIDR. */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf('/');
  if (slash <= 0) return undefined;
  const address = value.slice(0, slash).toLowerCase();
  const prefixText = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) return undefined;
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { family, address, prefix, text: `${address}/${prefix}` };
}

/** The address as big-endian bytes (4 or 16). Assumes a valid address. */
export function addressBytes(address: string): number[] {
  if (isIPv4(address)) return address.split('.').map(Number);
  // Expand `::`, then turn an embedded dotted quad (`::ffff:1.2.3.4`) into two hextets.
  let text = address;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill('0');
  const groups = [...headGroups, ...zeros, ...tailGroups].map((g) => Number.parseInt(g, 16));
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** True when `address` (same family) lies inside `cidr`. */
export function cidrContains(cidr: Cidr, address: string): boolean {
  const net = addressBytes(cidr.address);
  const ip = addressBytes(address);
  if (net.length !== ip.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; i < net.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((net[i] ?? 0) & mask) !== ((ip[i] ?? 0) & mask)) return false;
  }
  return true;
}
