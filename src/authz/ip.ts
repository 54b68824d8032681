/**
 * IP addresses and CIDR blocks without per-request allocation: an address is parsed into a
 * caller-owned Uint32Array(4) (IPv4 in word 0; IPv6 as four big-endian words). IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`, what dual-stack sockets report) is treated as IPv4, as Envoy does.
 */

/** 0 = not an IP address, 4 = IPv4 (or IPv4-mapped IPv6), 6 = IPv6. */
export type IpFamily = 0 | 4 | 6;
export const IP_INVALID = 0;
export const IP_V4 = 4;
export const IP_V6 = 6;

const groups = new Uint16Array(8);

function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let octet = -1;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      octet = octet < 0 ? c - 48 : octet * 10 + (c - 48);
      if (octet > 255) return -1;
    } else return -1;
  }
  if (octet < 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses IPv6 text (no brackets) into `groups`; false when malformed. */
function parseV6(s: string, end: number): boolean {
  let n = 0; // groups written
  let gap = -1; // group index of "::"
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (i === end) {
      groups.fill(0);
      return true;
    }
  }
  while (i < end) {
    // one group, or an embedded IPv4 tail
    let j = i;
    let v = 0;
    while (j < end && j - i < 5) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 46) {
      const v4 = parseV4(s, i, end);
      if (v4 < 0 || n > 6) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (j === i || j - i > 4 || n === 8) return false;
    groups[n++] = v;
    i = j;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
      if (i === end) break;
    } else if (i === end) return false;
  }
  if (gap < 0) return n === 8;
  if (n > 7) return false;
  const tail = n - gap;
  for (let k = 0; k < tail; k++) groups[7 - k] = groups[n - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  return true;
}

/**
 * Parses `s` into `out`. Returns the family; IPv4-mapped IPv6 comes back as V4. Accepts a zone
 * suffix (`fe80::1%eth0`) and ignores it.
 */
export function parseIpInto(s: string, out: Uint32Array): IpFamily {
  if (s.length === 0) return IP_INVALID;
  let end = s.indexOf('%');
  if (end < 0) end = s.length;
  if (s.indexOf(':') < 0) {
    const v4 = parseV4(s, 0, end);
    if (v4 < 0) return IP_INVALID;
    out[0] = v4;
    return IP_V4;
  }
  if (!parseV6(s, end)) return IP_INVALID;
  if (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    out[0] = ((groups[6]! << 16) | groups[7]!) >>> 0;
    return IP_V4;
  }
  for (let k = 0; k < 4; k++) out[k] = ((groups[2 * k]! << 16) | groups[2 * k + 1]!) >>> 0;
  return IP_V6;
}

/** A compiled CIDR block (a plain IP is a /32 or /128). */
export class Cidr {
  readonly family: IpFamily;
  readonly words: Uint32Array;
  readonly bits: number;

  private constructor(family: IpFamily, words: Uint32Array, bits: number) {
    this.family = family;
    this.words = words;
    this.bits = bits;
  }

  /** Throws with a readable message when `text` is not an IP or CIDR. */
  static parse(text: string): Cidr {
    const slash = text.indexOf('/');
    const words = new Uint32Array(4);
    const family = parseIpInto(slash < 0 ? text : text.slice(0, slash), words);
    // A CIDR written in IPv4-mapped form stays IPv6-sized in its prefix length.
    const mapped = family === IP_V4 && text.indexOf(':') >= 0;
    if (family === IP_INVALID) throw new Error(`${JSON.stringify(text)} is not an IP address or CIDR`);
    const max = family === IP_V4 ? 32 : 128;
    let bits = max;
    if (slash >= 0) {
      const b = text.slice(slash + 1);
      if (!/^\d+$/.test(b)) throw new Error(`${JSON.stringify(text)} has an invalid prefix length`);
      bits = Number(b) - (mapped ? 96 : 0);
      if (bits < 0) bits = 0;
      if (bits > max) throw new Error(`${JSON.stringify(text)} has an invalid prefix length`);
    }
    return new Cidr(family, words, bits);
  }

  /** Whether the address already parsed into `addr` (of `family`) is inside this block. */
  contains(family: IpFamily, addr: Uint32Array): boolean {
    if (family !== this.family) return false;
    let bits = this.bits;
    for (let k = 0; k < 4 && bits > 0; k++) {
      if (bits >= 32) {
        if (addr[k] !== this.words[k]) return false;
        bits -= 32;
      } else {
        const mask = (0xffffffff << (32 - bits)) >>> 0;
        return (addr[k]! & mask) >>> 0 === (this.words[k]! & mask) >>> 0;
      }
      if (family === IP_V4) return true;
    }
    return true;
  }
}
