/**
 * Client-side TLS of clusters. ISTIO_MUTUAL connects with the workload certificate (the
 * current MeshIdentity context: after a rotation new connections use the new certificate,
 * open ones are left alone), verifies the peer chain against the mesh root and its SPIFFE
 * URI SAN against the cluster's expected identities; a wrong identity fails the connection
 * (the request path reports it as a connect failure, UF) and is logged. SIMPLE / MUTUAL
 * originate TLS with the DestinationRule's own trust anchors and client certificate.
 */
import { readFileSync } from 'node:fs';
import net, { isIP, type Socket } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import type { buildConnector } from 'undici';
import type { Logger } from 'winston';
import { type ClusterTls, TLS_MODE_ISTIO, TLS_MODE_LABEL } from '../../tables/index.js';
import type { MeshIdentity } from './identity.js';
import { spiffeIdsOf } from './peer.js';

/** ALPN our client side offers, by what runs over the connection (Istio's `istio-*` values). */
export const ALPN = {
  http1: ['istio-http/1.1', 'istio', 'http/1.1'],
  h2: ['istio-h2', 'istio', 'h2'],
  tcp: ['istio-peer-exchange', 'istio'],
} as const;
export type AlpnUse = keyof typeof ALPN;

const PLAIN_ALPN: Record<AlpnUse, string[] | undefined> = { http1: ['http/1.1'], h2: ['h2'], tcp: undefined };

/** Error of a connection refused by our own verification (wrong peer identity). */
export class PeerIdentityError extends Error {
  override name = 'PeerIdentityError';
  readonly code = 'ERR_MTLS_PEER_IDENTITY';
}

const WARN_INTERVAL_MS = 10_000;
/** Upstream endpoints whose TLS session is kept for resumption, per cluster (oldest dropped). */
const MAX_SESSIONS = 256;

interface CachedSession {
  session: Buffer;
  /** MeshIdentity.version the session was made with (a rotated certificate starts afresh). */
  version: number;
}

/** How one cluster originates TLS; shared by the cluster's endpoints (and their pools). */
export class UpstreamTls {
  /** Identifies the settings (pools of different transports are never shared). */
  readonly key: string;
  readonly mode: ClusterTls['mode'];
  private readonly cluster: string;
  private readonly tls: ClusterTls;
  private readonly identity: MeshIdentity | null;
  private readonly log: Logger;
  private readonly sans: ReadonlySet<string> | null;
  /** SIMPLE/MUTUAL: built once; an Error when the files cannot be read. */
  private readonly own: tls.SecureContext | Error | null;
  private lastWarn = 0;
  /**
   * ISTIO_MUTUAL: the last TLS session (ticket) per endpoint `host:port`, offered on the next
   * connection so it resumes without a certificate exchange, as Envoy's upstream session cache
   * does. The server decides whether to resume (its tickets last up to 7200 s and die with its
   * certificate); a resumed session still goes through checkServerIdentity, on the certificate
   * verified when it was made.
   */
  private readonly sessions = new Map<string, CachedSession>();
  readonly checkIdentity: (host: string, cert: PeerCertificate) => Error | undefined;

  constructor(cluster: string, def: ClusterTls, identity: MeshIdentity | null, log: Logger) {
    this.cluster = cluster;
    this.tls = def;
    this.mode = def.mode;
    this.identity = identity;
    this.log = log;
    this.key = JSON.stringify(def);
    this.sans = def.subjectAltNames?.length ? new Set(def.subjectAltNames) : null;
    this.own = def.mode === 'ISTIO_MUTUAL' ? null : this.ownContext();
    this.checkIdentity =
      def.mode === 'ISTIO_MUTUAL' ? (h, c) => this.checkSpiffe(h, c) : (h, c) => this.checkNames(h, c);
  }

  /** Whether an endpoint (by its labels) gets TLS: always, or for `auto` only meshed ones. */
  appliesTo(labels: Readonly<Record<string, string>> | undefined): boolean {
    if (this.tls.auto !== true) return true;
    // A proxy without a workload identity cannot do mesh mTLS: auto mTLS stays plaintext
    // (PERMISSIVE peers accept it); an explicit ISTIO_MUTUAL fails instead (see connect).
    if (this.identity === null) return false;
    return labels?.[TLS_MODE_LABEL] === TLS_MODE_ISTIO;
  }

  /**
   * Opens a TLS connection; callers wait for 'secureConnect' (or 'error'). A failure that
   * happens before connecting (no certificate yet, unreadable files) surfaces as 'error' too.
   */
  connect(host: string, port: number, use: AlpnUse): Socket {
    const istio = this.mode === 'ISTIO_MUTUAL';
    const ctx = istio ? (this.identity?.context ?? null) : this.own;
    if (ctx === null || ctx instanceof Error) {
      const why =
        ctx instanceof Error
          ? ctx.message
          : this.identity === null
            ? 'this proxy has no workload identity (no certificate source configured)'
            : 'the workload certificate has not arrived yet';
      return failedSocket(new Error(`TLS to ${host}:${port} (cluster ${this.cluster}) impossible: ${why}`));
    }
    const sni = this.tls.sni ?? (isIP(host) === 0 ? host : undefined);
    const alpn = istio ? ALPN[use] : (this.tls.alpn ?? PLAIN_ALPN[use]);
    const version = this.identity?.version ?? 0;
    const key = istio ? `${host}:${port}` : '';
    const cached = istio ? this.sessions.get(key) : undefined;
    const s = tls.connect({
      host,
      port,
      secureContext: ctx,
      ...(sni !== undefined ? { servername: sni } : {}),
      ...(alpn !== undefined ? { ALPNProtocols: [...alpn] } : {}),
      ...(cached !== undefined && cached.version === version ? { session: cached.session } : {}),
      rejectUnauthorized: this.tls.insecureSkipVerify !== true,
      checkServerIdentity: this.checkIdentity,
    });
    s.setNoDelay(true);
    if (istio) s.on('session', (session: Buffer) => this.keepSession(key, session, version));
    return s;
  }

  private keepSession(key: string, session: Buffer, version: number): void {
    if (version !== (this.identity?.version ?? 0)) return;
    this.sessions.delete(key); // re-insert: most recent last
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    this.sessions.set(key, { session, version });
  }

  /** An undici connector (HTTP/1.1 pools) that dials through connect(), bounded by `timeoutMs`. */
  connector(timeoutMs: number): buildConnector.connector {
    return (opts, callback) => {
      const s = this.connect(opts.hostname, Number(opts.port), 'http1');
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        s.off('secureConnect', onSecure);
        if (err !== null) {
          s.destroy();
          callback(err, null);
        } else callback(null, s);
      };
      const onSecure = () => settle(null);
      const timer = setTimeout(() => {
        const e = new Error(`connect timeout after ${timeoutMs} ms (TLS)`) as Error & { code: string };
        e.code = 'UND_ERR_CONNECT_TIMEOUT';
        settle(e);
      }, timeoutMs);
      s.once('secureConnect', onSecure);
      s.once('error', (err: Error) => settle(err));
    };
  }

  private checkSpiffe(host: string, cert: PeerCertificate): Error | undefined {
    if (this.tls.insecureSkipVerify === true) return undefined;
    const ids = spiffeIdsOf(cert.subjectaltname);
    if (this.sans === null) {
      if (ids.length > 0) return undefined;
      return this.refuse(host, 'a certificate without a SPIFFE identity');
    }
    for (const id of ids) if (this.sans.has(id)) return undefined;
    return this.refuse(host, ids.length ? ids.join(', ') : 'no SPIFFE identity');
  }

  private checkNames(host: string, cert: PeerCertificate): Error | undefined {
    if (this.tls.insecureSkipVerify === true) return undefined;
    if (this.sans === null) return tls.checkServerIdentity(this.tls.sni ?? host, cert);
    const names = (cert.subjectaltname ?? '').split(', ').map((n) => n.slice(n.indexOf(':') + 1));
    for (const n of names) if (this.sans.has(n)) return undefined;
    return this.refuse(host, names.join(', ') || 'no subject alternative names');
  }

  private refuse(host: string, presented: string): Error {
    const expected = this.sans === null ? 'a SPIFFE identity' : `one of ${[...this.sans].join(', ')}`;
    const msg = `upstream ${host} of cluster ${this.cluster} presented ${presented}; expected ${expected}`;
    const now = Date.now();
    if (now - this.lastWarn >= WARN_INTERVAL_MS) {
      this.lastWarn = now;
      this.log.warn(`mTLS: connection refused: ${msg}`);
    }
    return new PeerIdentityError(msg);
  }

  private ownContext(): tls.SecureContext | Error {
    const t = this.tls;
    if (t.credentialName !== undefined)
      return new Error(
        `credentialName "${t.credentialName}" cannot be resolved by this proxy (use file paths)`,
      );
    try {
      const read = (path: string | undefined, pem: string | undefined) =>
        pem ?? (path !== undefined ? readFileSync(path, 'utf8') : undefined);
      const ca = read(t.caCertificates, t.caCertificatesPem);
      const cert = read(t.clientCertificate, t.clientCertificatePem);
      const key = read(t.privateKey, t.privateKeyPem);
      return tls.createSecureContext({
        ...(ca !== undefined ? { ca } : {}),
        ...(t.mode === 'MUTUAL' && cert !== undefined ? { cert } : {}),
        ...(t.mode === 'MUTUAL' && key !== undefined ? { key } : {}),
      });
    } catch (err) {
      const e = new Error(`TLS credentials of cluster ${this.cluster} unusable: ${(err as Error).message}`);
      this.log.error(e.message);
      return e;
    }
  }
}

/** A socket that only reports `err` (asynchronously, like a failed connect). */
function failedSocket(err: Error): Socket {
  const s = new net.Socket();
  process.nextTick(() => s.destroy(err));
  return s;
}
