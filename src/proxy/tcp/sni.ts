/**
 * Server name (SNI) of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), read from the first
 * bytes of a connection without terminating TLS: Envoy's tls_inspector.
 */

/** Outcome of parsing: a name, `null` (a ClientHello without SNI, or not TLS), or more bytes needed. */
export type SniResult = string | null | undefined;

/** Largest ClientHello we wait for (Envoy's tls_inspector reads up to 64 KiB). */
export const MAX_CLIENT_HELLO = 64 * 1024;

/**
 * Parses the ClientHello at the start of `buf`. The handshake message may span several TLS
 * records; their fragments are joined first. Returns undefined while incomplete.
 */
export function parseSni(buf: Buffer): SniResult {
  const ext = clientHelloExtension(buf, 0 /* server_name */);
  return ext === undefined || ext === null ? ext : serverName(ext);
}

/**
 * The body of extension `type` of the ClientHello at the start of `buf`: null when the hello
 * lacks it (or the bytes are not a ClientHello), undefined while more bytes are needed.
 * Shared by the SNI reader here and the ALPN reader of the mTLS path.
 */
export function clientHelloExtension(buf: Buffer, type: number): Buffer | null | undefined {
  const hs = handshakeBytes(buf);
  if (hs === undefined || hs === null) return hs;
  // Handshake header: type(1) = client_hello(1), length(3).
  if (hs[0] !== 1) return null;
  if (hs.length < 4) return undefined;
  const len = (hs[1]! << 16) | (hs[2]! << 8) | hs[3]!;
  if (hs.length < 4 + len) return len + 4 > MAX_CLIENT_HELLO ? null : undefined;
  const body = hs.subarray(4, 4 + len);
  let p = 2 + 32; // legacy_version, random
  if (p >= body.length) return null;
  p += 1 + body[p]!; // session id
  if (p + 2 > body.length) return null;
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (p >= body.length) return null;
  p += 1 + body[p]!; // compression methods
  if (p + 2 > body.length) return null; // no extensions
  const extEnd = Math.min(body.length, p + 2 + body.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const extType = body.readUInt16BE(p);
    const size = body.readUInt16BE(p + 2);
    p += 4;
    if (extType === type) return body.subarray(p, Math.min(p + size, extEnd));
    p += size;
  }
  return null;
}

function serverName(ext: Buffer): string | null {
  if (ext.length < 2) return null;
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let p = 2;
  while (p + 3 <= end) {
    const type = ext[p]!;
    const n = ext.readUInt16BE(p + 1);
    p += 3;
    if (type === 0 /* host_name */ && p + n <= end) return ext.toString('latin1', p, p + n).toLowerCase();
    p += n;
  }
  return null;
}

/** Joined handshake fragments of the leading TLS records; null when not TLS. */
function handshakeBytes(buf: Buffer): Buffer | null | undefined {
  const parts: Buffer[] = [];
  let have = 0;
  let p = 0;
  let need = 4;
  while (have < need) {
    if (p + 5 > buf.length) return p >= MAX_CLIENT_HELLO ? null : undefined;
    if (buf[p] !== 0x16 || buf[p + 1] !== 0x03) return null;
    const len = buf.readUInt16BE(p + 3);
    if (p + 5 + len > buf.length) return undefined;
    parts.push(buf.subarray(p + 5, p + 5 + len));
    have += len;
    p += 5 + len;
    if (need === 4 && have >= 4) {
      const first = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      need = 4 + ((first[1]! << 16) | (first[2]! << 8) | first[3]!);
      if (need > MAX_CLIENT_HELLO) return null;
    }
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
