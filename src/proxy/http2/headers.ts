/**
 * Header mapping between the proxy's flat arrays and HTTP/2 (RFC 9113 8.2-8.3):
 * `:authority` <-> Host, connection-specific fields dropped, cookies crumbled on HTTP/2 and
 * joined for HTTP/1, `te` only as `trailers`, names lowercased.
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import { isGrpcContentType } from './grpc.js';

/** Fields HTTP/2 forbids (RFC 9113 8.2.2) plus the proxy's own hop-by-hop set. */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'http2-settings',
]);
const CS_LENGTHS = new Set([...CONNECTION_SPECIFIC].map((h) => h.length));

function connectionSpecific(lower: string): boolean {
  return CS_LENGTHS.has(lower.length) && CONNECTION_SPECIFIC.has(lower);
}

/** Adds a field to a node HTTP/2 header object, turning repeats into arrays. */
function append(h: OutgoingHttpHeaders, name: string, value: string): void {
  const cur = h[name];
  if (cur === undefined) h[name] = value;
  else if (Array.isArray(cur)) cur.push(value);
  else h[name] = [String(cur), value];
}

/** Request headers for an HTTP/2 upstream from the proxy's flat request headers. */
export function toH2Request(method: string, path: string, flat: readonly string[]): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = Object.create(null);
  h[':method'] = method;
  h[':scheme'] = 'http';
  h[':path'] = path;
  let grpc = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (connectionSpecific(name)) {
      if (name === 'host') h[':authority'] = value;
      continue;
    }
    if (name === 'content-type' && isGrpcContentType(value)) grpc = true;
    append(h, name, value);
  }
  // gRPC servers may insist on it; it only says "I accept trailers" (RFC 9113 8.2.2).
  if (grpc) h.te = 'trailers';
  return h;
}

/** Response headers for an HTTP/2 downstream (`:status` plus the flat fields). */
export function toH2Response(status: number, flat: readonly string[]): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = Object.create(null);
  h[':status'] = status;
  appendFields(h, flat);
  return h;
}

/** Trailers for an HTTP/2 downstream. */
export function toH2Trailers(flat: readonly string[]): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = Object.create(null);
  appendFields(h, flat);
  return h;
}

function appendFields(h: OutgoingHttpHeaders, flat: readonly string[]): void {
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    if (connectionSpecific(name) || name.charCodeAt(0) === 0x3a) continue;
    append(h, name, flat[i + 1]!);
  }
}

/**
 * Flat fields of a received HTTP/2 header block (node's raw `[name, value, ...]`), without
 * pseudo-headers and connection-specific fields.
 */
export function fromH2Raw(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a || connectionSpecific(name)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/** A downstream HTTP/2 request head, as the protocol-independent request path wants it. */
export interface H2RequestHead {
  method: string;
  path: string;
  /** Fields with `host` first (from `:authority`, else the Host field); cookies joined. */
  headers: string[];
  contentLength: number;
  contentType: string | undefined;
  /** The client sent `te: trailers`. */
  trailers: boolean;
}

export function parseH2Request(raw: readonly string[]): H2RequestHead {
  let method = 'GET';
  let path = '/';
  let authority: string | undefined;
  let host: string | undefined;
  let cookie: string | undefined;
  let contentLength = -1;
  let contentType: string | undefined;
  let trailers = false;
  const headers: string[] = ['host', ''];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 0x3a) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      continue;
    }
    switch (name) {
      case 'host':
        host = value;
        continue;
      case 'cookie':
        // RFC 9113 8.2.3: crumbled cookies are joined with "; " for HTTP/1.1.
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        continue;
      case 'te':
        trailers = value.trim().toLowerCase() === 'trailers';
        continue;
      case 'content-length':
        contentLength = Number(value);
        break;
      case 'content-type':
        contentType = value;
        break;
      default:
        if (connectionSpecific(name)) continue;
    }
    headers.push(name, value);
  }
  // RFC 9113 8.3.1: :authority wins over Host.
  headers[1] = authority ?? host ?? '';
  if (cookie !== undefined) headers.push('cookie', cookie);
  if (!Number.isSafeInteger(contentLength) || contentLength < 0) contentLength = -1;
  return { method, path, headers, contentLength, contentType, trailers };
}
