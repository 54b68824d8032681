/**
 * What the inbound side needs from a TLS ClientHello before deciding to terminate it: is it
 * TLS at all, and does the client speak mesh mTLS (ALPN `istio*`, which our client side and
 * Istio's sidecars offer) or is it the app's own TLS (PERMISSIVE passes that through to the
 * app untouched, as Istio's permissive filter chains do).
 */

import { clientHelloExtension, MAX_CLIENT_HELLO } from '../tcp/sni.js';

export const HelloKind = { Plain: 1, MeshTls: 2, OtherTls: 3 } as const;
export type HelloKindValue = (typeof HelloKind)[keyof typeof HelloKind];

/** Largest ClientHello waited for before giving up on reading it (Envoy: 64 KiB). */
export const MAX_HELLO = MAX_CLIENT_HELLO;

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
  const ext = clientHelloExtension(buf, 16 /* application_layer_protocol_negotiation */);
  return ext === undefined || ext === null ? ext : protocols(ext);
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
