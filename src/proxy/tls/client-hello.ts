/**
 * What the inbound side needs from a TLS ClientHello before deciding to terminate it: is it
 * TLS at all, and does the client speak mesh mTLS (ALPN `istio*`, which our client side and
 * Istio's sidecars offer) or is it the app's own TLS (PERMISSIVE passes that through to the
 * app untouched, as Istio's permissive filter chains do).
 */

export const HelloKind = { Plain: 1, MeshTls: 2, OtherTls: 3 } as const;
export type HelloKindValue = (typeof HelloKind)[keyof typeof HelloKind];

/** Largest ClientHello waited for before giving up on reading it (Envoy: 64 KiB). */
export const MAX_HELLO = 64 * 1024;

export function isMeshAlpn(p: string): boolean {
  return p === 'istio' || p.startsWith('istio-');
}

/**
 * Classifies the first bytes of a connection: Plain (not a TLS handshake record), MeshTls,
 * OtherTls, or undefined while more bytes are needed.
 */
export function classifyHello(buf: Buffer): HelloKindValue | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] !== 0x16) return HelloKind.Plain;
  if (buf.length < 2) return undefined;
  if (buf[1] !== 0x03) return HelloKind.Plain;
  const alpn = clientHelloAlpn(buf);
  if (alpn === undefined) return buf.length >= MAX_HELLO ? HelloKind.OtherTls : undefined;
  return alpn?.some(isMeshAlpn) ? HelloKind.MeshTls : HelloKind.OtherTls;
}

/**
 * ALPN protocols of the ClientHello at the start of `buf`: the list, null when the hello has
 * none (or is not a ClientHello), undefined while incomplete. Handshake fragments spread over
 * several records are joined first.
 */
export function clientHelloAlpn(buf: Buffer): string[] | null | undefined {
  const hs = handshake(buf);
  if (hs === undefined || hs === null) return hs;
  if (hs[0] !== 1) return null;
  const len = (hs[1]! << 16) | (hs[2]! << 8) | hs[3]!;
  if (hs.length < 4 + len) return undefined;
  const body = hs.subarray(4, 4 + len);
  let p = 34; // legacy_version + random
  if (p >= body.length) return null;
  p += 1 + body[p]!; // session id
  if (p + 2 > body.length) return null;
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (p >= body.length) return null;
  p += 1 + body[p]!; // compression methods
  if (p + 2 > body.length) return null;
  const end = Math.min(body.length, p + 2 + body.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = body.readUInt16BE(p);
    const size = body.readUInt16BE(p + 2);
    p += 4;
    if (type === 16 /* application_layer_protocol_negotiation */)
      return protocols(body.subarray(p, Math.min(p + size, end)));
    p += size;
  }
  return null;
}

function protocols(ext: Buffer): string[] {
  const out: string[] = [];
  if (ext.length < 2) return out;
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let p = 2;
  while (p < end) {
    const n = ext[p]!;
    p += 1;
    if (p + n > end) break;
    out.push(ext.toString('latin1', p, p + n));
    p += n;
  }
  return out;
}

/** Handshake bytes of the leading records (at least the 4-byte header); null when not TLS. */
function handshake(buf: Buffer): Buffer | null | undefined {
  const parts: Buffer[] = [];
  let have = 0;
  let need = 4;
  let p = 0;
  while (have < need) {
    if (p + 5 > buf.length) return undefined;
    if (buf[p] !== 0x16) return null;
    const size = buf.readUInt16BE(p + 3);
    if (p + 5 + size > buf.length) return undefined;
    const frag = buf.subarray(p + 5, p + 5 + size);
    parts.push(frag);
    have += frag.length;
    p += 5 + size;
    if (parts.length === 1 && frag.length >= 4) need = 4 + ((frag[1]! << 16) | (frag[2]! << 8) | frag[3]!);
    else if (have >= 4 && need === 4) {
      const h = Buffer.concat(parts);
      need = 4 + ((h[1]! << 16) | (h[2]! << 8) | h[3]!);
    }
    if (need > MAX_HELLO) return null;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
