/**
 * The verified peer identity of a downstream mTLS connection, attached to its (TLS) socket so
 * the HTTP and TCP paths can read it per request without allocating: metrics
 * (`source_principal`, `connection_security_policy="mutual_tls"`) and authorization
 * (`source.principal`). Reads through node:http2's session socket proxy, like captured.ts.
 */
import type { Socket } from 'node:net';

export class PeerIdentity {
  /** `spiffe://cluster.local/ns/<ns>/sa/<sa>` (Istio's metric label value). */
  readonly principal: string;
  /** Without the scheme, as AuthorizationPolicy `principals` spell it: `cluster.local/ns/<ns>/sa/<sa>`. */
  readonly identity: string;
  /** Namespace from the identity ('' when the ID is not a Kubernetes one). */
  readonly namespace: string;
  /** Server name the client asked for (SNI), '' when none. */
  readonly sni: string;

  constructor(principal: string, sni: string) {
    this.principal = principal;
    this.identity = principal.startsWith('spiffe://') ? principal.slice('spiffe://'.length) : principal;
    const m = /\/ns\/([^/]+)\//.exec(this.identity);
    this.namespace = m ? m[1]! : '';
    this.sni = sni;
  }
}

const PEER: unique symbol = Symbol('isthmus.mtlsPeer');

interface WithPeer {
  [PEER]?: PeerIdentity;
}

export function setPeer(socket: Socket, peer: PeerIdentity): void {
  (socket as WithPeer)[PEER] = peer;
}

/** The peer of a socket, null for plaintext connections. */
export function peerOf(socket: object | null | undefined): PeerIdentity | null {
  return socket ? ((socket as WithPeer)[PEER] ?? null) : null;
}

/** The peer of the connection a request arrived on (HTTP/1 `conn.socket`, HTTP/2 `stream.session.socket`). */
export function peerOfStream(stream: object): PeerIdentity | null {
  const s = stream as { conn?: { socket?: Socket }; stream?: { session?: { socket?: Socket } | undefined } };
  return peerOf(s.conn?.socket ?? s.stream?.session?.socket);
}

/** SPIFFE URI SANs of a certificate's `subjectaltname` string (`URI:spiffe://..., DNS:...`). */
export function spiffeIdsOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const part of subjectAltName.split(', '))
    if (part.startsWith('URI:spiffe://')) out.push(part.slice(4));
  return out;
}
