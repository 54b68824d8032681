/**
 * Server side of mesh mTLS on the inbound capture port (15006). Per port mode (from the
 * PeerAuthentication the compiler resolved):
 * - DISABLE: plaintext only (TLS goes to the app as it is);
 * - PERMISSIVE: the first bytes decide: a ClientHello offering mesh ALPN (`istio*`) is
 *   terminated with the workload certificate, anything else (plaintext, the app's own TLS)
 *   goes the plaintext way;
 * - STRICT: TLS is terminated, plaintext is refused (connection closed).
 * Termination requires a client certificate chaining to the mesh root whose SPIFFE ID is in
 * our trust domain; the decrypted socket then carries the peer identity (peer.ts) and is
 * handed to the same HTTP/TCP path as plaintext connections.
 */
import type { Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { Logger } from 'winston';
import type { InboundMtlsMode } from '../../tables/index.js';
import { peek } from '../tcp/sniff.js';
import { classifyHello, HelloKind, type HelloKindValue, isMeshAlpn, MAX_HELLO } from './client-hello.js';
import type { MeshIdentity } from './identity.js';
import { PeerIdentity, setPeer, spiffeIdsOf } from './peer.js';

/** Counters for /stats and tests. */
export class InboundTlsStats {
  /** Handshakes completed with an accepted peer. */
  terminated = 0;
  /** Of those, abbreviated handshakes resuming an earlier session (ticket). */
  resumed = 0;
  /** Handshakes that failed (no/invalid client certificate, protocol errors, timeouts). */
  handshakeFailed = 0;
  /** Peers with a valid chain but no SPIFFE identity of our trust domain. */
  peerRejected = 0;
  /** Plaintext connections refused by STRICT. */
  plaintextRefused = 0;
  /** Connections served in plaintext on a port that accepts mTLS (PERMISSIVE). */
  plaintextAccepted = 0;
}

/** ALPN the server side selects, best first (the decrypted bytes are sniffed anyway). */
const SERVER_ALPN = [
  'istio-h2',
  'istio-http/1.1',
  'istio-http/1.0',
  'istio-peer-exchange',
  'istio',
  'h2',
  'http/1.1',
];

function selectAlpn({ protocols }: { protocols: string[] }): string | undefined {
  for (const p of SERVER_ALPN) if (protocols.includes(p)) return p;
  return protocols.find(isMeshAlpn) ?? protocols[0];
}

const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface InboundHandlers {
  /** Serve the connection as it is (plaintext, or TLS the app terminates); `pending` as in peek(). */
  plaintext(socket: Socket, pending: Buffer | null): void;
  /** Serve the decrypted connection (its peer is attached, see peerOf). */
  secured(socket: TLSSocket): void;
}

export class InboundTls {
  readonly stats = new InboundTlsStats();
  private readonly identity: MeshIdentity;
  private readonly log: Logger;
  private readonly sniffTimeoutMs: number;

  constructor(identity: MeshIdentity, log: Logger, sniffTimeoutMs = 100) {
    this.identity = identity;
    this.log = log;
    this.sniffTimeoutMs = sniffTimeoutMs;
  }

  /** Serves one captured inbound connection under `mode`. */
  handle(socket: Socket, mode: InboundMtlsMode, h: InboundHandlers): void {
    if (mode === 'DISABLE') {
      h.plaintext(socket, null);
      return;
    }
    if (!this.identity.ready && mode === 'PERMISSIVE') {
      // No certificate yet: nothing to terminate with; plaintext keeps working.
      h.plaintext(socket, null);
      return;
    }
    peek<HelloKindValue>(socket, classifyHello, this.sniffTimeoutMs, MAX_HELLO, (kind, pending) => {
      if (socket.destroyed) return;
      const strict = mode === 'STRICT';
      const tlsHello = kind === HelloKind.MeshTls || (strict && kind === HelloKind.OtherTls);
      if (pending === null && tlsHello && this.identity.ready) {
        this.terminate(socket, h);
        return;
      }
      if (strict) {
        this.stats.plaintextRefused++;
        if (this.log.isDebugEnabled())
          this.log.debug(`mTLS STRICT: refused a plaintext connection from ${socket.remoteAddress}`);
        socket.destroy();
        return;
      }
      this.stats.plaintextAccepted++;
      h.plaintext(socket, pending);
    });
  }

  private terminate(socket: Socket, h: InboundHandlers): void {
    const t = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: this.identity.context!,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNCallback: selectAlpn,
    });
    const timer = setTimeout(onHandshakeTimeout, HANDSHAKE_TIMEOUT_MS, t);
    const onError = (err: Error) => {
      clearTimeout(timer);
      this.stats.handshakeFailed++;
      if (this.log.isDebugEnabled())
        this.log.debug(`mTLS: inbound handshake from ${socket.remoteAddress} failed: ${err.message}`);
      t.destroy();
    };
    t.once('error', onError);
    t.once('secure', () => {
      clearTimeout(timer);
      t.off('error', onError);
      t.on('error', noop);
      // A TLSSocket made outside tls.Server leaves the verdict of OpenSSL's chain check to us.
      const verifyError = chainError(t);
      if (verifyError !== null) {
        this.stats.handshakeFailed++;
        if (this.log.isDebugEnabled())
          this.log.debug(
            `mTLS: refused inbound peer ${socket.remoteAddress}: certificate not verified by the mesh root (${verifyError})`,
          );
        t.destroy();
        return;
      }
      // The X509Certificate view reads the SAN natively; getPeerCertificate() would build a
      // JS object of every field (~0.3 ms per connection). On a resumed session this is the
      // certificate verified when the session was made.
      const ids = spiffeIdsOf(t.getPeerX509Certificate()?.subjectAltName);
      const prefix = this.identity.trustPrefix;
      const principal = ids.find((id) => prefix === '' || id.startsWith(prefix));
      if (principal === undefined) {
        this.stats.peerRejected++;
        this.log.warn(
          `mTLS: refused inbound peer ${socket.remoteAddress}: identity ${ids.join(', ') || '(none)'} ` +
            `is not in trust domain ${prefix || '(unknown)'}`,
        );
        t.destroy();
        return;
      }
      this.stats.terminated++;
      if (t.isSessionReused()) this.stats.resumed++;
      // tls.Server clears this once a server socket is secure; node:http2 waits on it otherwise.
      (t as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      const sni = (t as TLSSocket & { servername?: string | false }).servername;
      setPeer(t, new PeerIdentity(principal, typeof sni === 'string' ? sni : ''));
      h.secured(t);
    });
  }
}

/** OpenSSL's verification result of the peer chain (what tls.Server reads), null when it verified. */
function chainError(t: TLSSocket): string | null {
  const ssl = (t as TLSSocket & { ssl?: { verifyError?: () => (Error & { code?: string }) | null } }).ssl;
  if (typeof ssl?.verifyError !== 'function') return 'verification result unavailable';
  const err = ssl.verifyError();
  return err ? (err.code ?? err.message) : null;
}

function onHandshakeTimeout(t: TLSSocket): void {
  t.destroy(new Error('TLS handshake timeout'));
}

function noop(): void {}
