/**
 * A minimal DER codec over Buffers: just what CSRs and workload certificates need.
 *
 * Why not node-forge here: forge's X.509 and CSR layers only understand RSA keys, and its ASN.1
 * works on binary strings. Workload keys are EC P-256 (see csr.ts), and every signature is made
 * and checked by Node's native crypto, so we only need to lay out and slice DER structures.
 * Decoding is strict (definite lengths, bounds checked) because it parses untrusted CSRs.
 */

export class DerError extends Error {
  override name = 'DerError';
}

/** Universal tags and the context-specific ones X.509 uses. */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

// ---- encoding ----

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with the given tag byte (universal, or context-specific like 0xa3 / 0x86). */
export function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(TAG.sequence, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => tlv(TAG.set, Buffer.concat(items));
export const octetString = (b: Buffer): Buffer => tlv(TAG.octetString, b);
export const nullValue = (): Buffer => Buffer.from([TAG.null, 0]);
export const bool = (v: boolean): Buffer => Buffer.from([TAG.boolean, 1, v ? 0xff : 0]);
/** `[n] EXPLICIT` wrapper (constructed, context-specific). */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
export const utf8 = (s: string): Buffer => tlv(TAG.utf8String, Buffer.from(s, 'utf8'));

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, sign bit cleared). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let body = magnitude.subarray(i);
  if (body.length === 0) body = Buffer.from([0]);
  if (body[0]! & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(TAG.integer, body);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]));

/** BIT STRING with no unused bits (keys, signatures). */
export const bitString = (bytes: Buffer): Buffer =>
  tlv(TAG.bitString, Buffer.concat([Buffer.from([0]), bytes]));

/** A named-bit BIT STRING (keyUsage) from bit numbers (0 = most significant bit of byte 0). */
export function namedBits(bits: number[]): Buffer {
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  // DER drops trailing zero bits: the unused count is what follows the highest set bit.
  const unused = 7 - (max & 7);
  return tlv(TAG.bitString, Buffer.concat([Buffer.from([unused]), bytes]));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => Number(a));
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0))
    throw new DerError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: number) => {
    const chunk = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(TAG.oid, Buffer.from(out));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds, UTC. */
export function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.utcTime, Buffer.from(digits.slice(2), 'ascii'));
  return tlv(TAG.generalizedTime, Buffer.from(digits, 'ascii'));
}

// ---- decoding ----

export interface Tlv {
  tag: number;
  /** Offset of the tag byte; `buf.subarray(start, end)` is the whole element, re-usable as is. */
  start: number;
  valueStart: number;
  end: number;
}

/** Reads the element at `pos`, checking that it ends within `limit`. */
export function readTlv(buf: Buffer, pos = 0, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated element');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  let len = buf[pos + 1]!;
  let valueStart = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('element too long');
    if (valueStart + n > limit) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[valueStart + i]!;
    valueStart += n;
  }
  const end = valueStart + len;
  if (end > limit) throw new DerError('element runs past its container');
  return { tag, start: pos, valueStart, end };
}

/** The direct children of a constructed element. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.valueStart; pos < parent.end; ) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

/** Reads exactly one top-level element spanning the whole buffer and checks its tag. */
export function readRoot(buf: Buffer, tag: number): Tlv {
  const root = readTlv(buf, 0);
  if (root.tag !== tag)
    throw new DerError(`expected tag 0x${tag.toString(16)}, got 0x${root.tag.toString(16)}`);
  if (root.end !== buf.length) throw new DerError('trailing bytes after the element');
  return root;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) throw new DerError(`missing ${what}`);
  if (t.tag !== tag)
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

export const contentOf = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.valueStart, t.end);
export const bytesOf = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

export function decodeOid(value: Buffer): string {
  if (value.length === 0) throw new DerError('empty OID');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    }
  }
  if (value[value.length - 1]! & 0x80) throw new DerError('truncated OID');
  return arcs.join('.');
}

/** The bytes of a BIT STRING with no unused bits (signatures, public keys). */
export function bitStringBytes(value: Buffer): Buffer {
  if (value.length < 1 || value[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return value.subarray(1);
}

// ---- PEM ----

export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block of the given label, as DER, in order. */
export function pemBlocks(pem: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) {
    if (m[1] === label) out.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  }
  return out;
}

/** Splits a PEM bundle into one normalised PEM string per certificate. */
export function splitCertificates(pem: string): string[] {
  return pemBlocks(pem, 'CERTIFICATE').map((der) => toPem('CERTIFICATE', der));
}
