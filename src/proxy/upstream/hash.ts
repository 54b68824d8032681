/**
 * Consistent hashing (Istio DestinationRule `loadBalancer.consistentHash`): the request's hash
 * key (header, cookie, source IP or query parameter) and the two Envoy tables, the ketama-style
 * ring (RING_HASH) and Maglev's lookup table (MAGLEV). Tables are built once per host-set
 * change; a pick is one hash of the key plus a binary search (ring) or one index (Maglev).
 * Hashes are 32-bit murmur3, not Envoy's xxHash64: the same keys stick to the same hosts, but
 * not to the hosts an Envoy would choose.
 */
import type { Socket } from 'node:net';
import type { ConsistentHash } from '../../tables/index.js';
import { getHeader } from '../headers.js';
import type { Downstream } from '../http/downstream.js';
import type { EndpointState } from './endpoint.js';

/** What a balancer may read from the request (the Exchange implements it). */
export interface LbRequest {
  /** Forwarded request headers, flat. */
  readonly headers: readonly string[];
  /** Path with query string. */
  readonly path: string;
  readonly res: Downstream;
  /** Set by the hash step when it generated the hash cookie: the Set-Cookie value to return. */
  setCookie: string | null;
}

export const DEFAULT_RING_SIZE = 1024;
export const DEFAULT_MAGLEV_SIZE = 65537;
const MAX_RING_SIZE = 8 * 1024 * 1024;

/** murmur3 (x86, 32-bit) over the UTF-16 code units of `s`. */
export function hash32(s: string, seed = 0): number {
  let h = seed >>> 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function socketOf(stream: object): Socket | undefined {
  const s = stream as { conn?: { socket?: Socket }; stream?: { session?: { socket?: Socket } | undefined } };
  return s.conn?.socket ?? s.stream?.session?.socket;
}

/** `::ffff:10.0.0.1` -> `10.0.0.1`. */
function plainIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.length > 7 && ip.startsWith('::ffff:') && ip.indexOf('.') > 0 ? ip.slice(7) : ip;
}

/** Value of cookie `name` in the request's Cookie header(s), surrounding quotes removed. */
export function cookieValue(headers: readonly string[], name: string): string | undefined {
  const len = name.length;
  for (let i = 0; i < headers.length; i += 2) {
    const h = headers[i]!;
    if (h.length !== 6 || h.toLowerCase() !== 'cookie') continue;
    const v = headers[i + 1]!;
    let at = 0;
    while (at < v.length) {
      while (v.charCodeAt(at) === 0x20) at++;
      let end = v.indexOf(';', at);
      if (end < 0) end = v.length;
      if (v.charCodeAt(at + len) === 0x3d && v.startsWith(name, at)) {
        let val = v.slice(at + len + 1, end).trim();
        if (val.length >= 2 && val.charCodeAt(0) === 0x22 && val.charCodeAt(val.length - 1) === 0x22)
          val = val.slice(1, -1);
        return val;
      }
      at = end + 1;
    }
  }
  return undefined;
}

/** Raw value of query parameter `name` in `path` (first occurrence, not decoded, as Envoy). */
export function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const len = name.length;
  let at = q + 1;
  while (at < path.length) {
    let end = path.indexOf('&', at);
    if (end < 0) end = path.length;
    if (path.startsWith(name, at)) {
      const c = path.charCodeAt(at + len);
      if (at + len === end) return '';
      if (c === 0x3d) return path.slice(at + len + 1, end);
    }
    at = end + 1;
  }
  return undefined;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * The request's hash for the cluster's key, or -1 when the request has none (the balancer then
 * picks at random, as Envoy does). A missing cookie with a TTL is generated as Envoy does: from
 * the connection's addresses, so requests racing on one connection get the same cookie.
 */
export function requestHash(ch: ConsistentHash, req: LbRequest): number {
  if (ch.httpHeaderName !== undefined) {
    const v = getHeader(req.headers, ch.httpHeaderName);
    return v === undefined ? -1 : hash32(v);
  }
  const cookie = ch.httpCookie;
  if (cookie !== undefined) {
    const v = cookieValue(req.headers, cookie.name);
    if (v !== undefined) return hash32(v);
    if (cookie.ttlMs === undefined) return -1;
    const socket = socketOf(req.res);
    const conn = `${socket?.remoteAddress ?? ''}:${socket?.remotePort ?? ''}${socket?.localAddress ?? ''}:${socket?.localPort ?? ''}`;
    const value = hex8(hash32(conn, 1)) + hex8(hash32(conn, 2));
    const ttl = Math.floor(cookie.ttlMs / 1000);
    req.setCookie =
      `${cookie.name}="${value}"` +
      (ttl > 0 ? `; Max-Age=${ttl}` : '') +
      (cookie.path ? `; Path=${cookie.path}` : '') +
      (cookie.attributes ? cookieAttributes(cookie.attributes) : '') +
      '; HttpOnly';
    return hash32(value);
  }
  if (ch.useSourceIp === true) {
    const ip = plainIp(socketOf(req.res)?.remoteAddress);
    return ip === '' ? -1 : hash32(ip);
  }
  if (ch.httpQueryParameterName !== undefined) {
    const v = queryValue(req.path, ch.httpQueryParameterName);
    return v === undefined ? -1 : hash32(v);
  }
  return -1;
}

function cookieAttributes(list: ReadonlyArray<{ name: string; value?: string }>): string {
  let out = '';
  for (const a of list) out += a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`;
  return out;
}

/** Checks a consistentHash block; returns an error message or null. */
export function consistentHashError(ch: ConsistentHash | undefined): string | null {
  if (ch === undefined) return null;
  const keys = [
    ch.httpHeaderName !== undefined,
    ch.httpCookie !== undefined,
    ch.useSourceIp === true,
    ch.httpQueryParameterName !== undefined,
  ].filter(Boolean).length;
  if (keys !== 1)
    return `consistentHash needs exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName (has ${keys})`;
  if (ch.tableSize !== undefined && !isPrime(ch.tableSize))
    return `consistentHash.tableSize ${ch.tableSize} must be a prime (e.g. 65537)`;
  if (ch.minimumRingSize !== undefined && ch.minimumRingSize > MAX_RING_SIZE)
    return `consistentHash.minimumRingSize ${ch.minimumRingSize} exceeds ${MAX_RING_SIZE}`;
  return null;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

export interface HashTable {
  lookup(hash: number): EndpointState | undefined;
}

/** Envoy RING_HASH: each host owns ~minimumRingSize x weight share points of a 32-bit ring. */
export class Ring implements HashTable {
  private readonly points: Uint32Array;
  private readonly owners: EndpointState[];

  constructor(hosts: readonly EndpointState[], minimumRingSize: number) {
    let sum = 0;
    for (const h of hosts) sum += h.weight;
    const target = Math.min(MAX_RING_SIZE, Math.max(minimumRingSize, hosts.length));
    const entries: Array<[number, EndpointState]> = [];
    for (const h of hosts) {
      const n = Math.max(1, Math.ceil((target * h.weight) / sum));
      for (let i = 0; i < n; i++) entries.push([hash32(`${h.key}_${i}`), h]);
    }
    entries.sort((a, b) => a[0] - b[0]);
    this.points = new Uint32Array(entries.length);
    this.owners = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      this.points[i] = entries[i]![0];
      this.owners[i] = entries[i]![1];
    }
  }

  lookup(hash: number): EndpointState | undefined {
    const p = this.points;
    const n = p.length;
    if (n === 0) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[mid]! < hash) lo = mid + 1;
      else hi = mid;
    }
    return this.owners[lo === n ? 0 : lo];
  }
}

/** Maglev (Eisenbud et al. 2016) with Envoy's weighting: a host of weight w/max fills its turn w/max of the rounds. */
export class Maglev implements HashTable {
  /** Slot -> index into `hosts` (-1 when there are no hosts). */
  private readonly table: Int32Array;
  private readonly hosts: readonly EndpointState[];
  private readonly size: number;

  constructor(hosts: readonly EndpointState[], size: number) {
    this.size = size;
    this.hosts = hosts;
    const n = hosts.length;
    this.table = new Int32Array(n ? size : 0).fill(-1);
    if (n === 0) return;
    let max = 0;
    for (const h of hosts) max = Math.max(max, h.weight);
    const table = this.table;
    const offset = new Uint32Array(n);
    const skip = new Uint32Array(n);
    // Current permutation position of each host: (offset + skip * j) % size, stepped by skip.
    const pos = new Uint32Array(n);
    const target = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const key = hosts[i]!.key;
      offset[i] = hash32(key, 0x9e3779b9) % size;
      skip[i] = (hash32(key, 0x85ebca6b) % (size - 1)) + 1;
      pos[i] = offset[i]!;
      target[i] = max;
    }
    let filled = 0;
    for (let round = 1; filled < size; round++) {
      for (let i = 0; i < n && filled < size; i++) {
        if (round * hosts[i]!.weight < target[i]!) continue;
        target[i] = target[i]! + max;
        let c = pos[i]!;
        while (table[c] !== -1) c = (c + skip[i]!) % size;
        table[c] = i;
        pos[i] = (c + skip[i]!) % size;
        filled++;
      }
    }
  }

  lookup(hash: number): EndpointState | undefined {
    const t = this.table;
    return t.length === 0 ? undefined : this.hosts[t[hash % this.size]!];
  }
}
