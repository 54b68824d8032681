/**
 * The workload's own mesh identity as the proxy uses it: one tls.SecureContext per
 * certificate version (building a context costs more than a handshake, so connections share
 * it), swapped atomically when the agent rotates the certificate. Connections already open
 * keep the context they were made with; new ones take the current one, client and server side.
 */
import { constants } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from 'winston';
import type { WorkloadCertificate } from '../../agent/accept.js';

/** What the agent's CertificateManager offers (an interface so tests can feed certificates). */
export interface CertificateSource {
  current(): WorkloadCertificate | undefined;
  on(
    event: 'certificate',
    listener: (cert: WorkloadCertificate, reason: 'initial' | 'rotation') => void,
  ): unknown;
  off(
    event: 'certificate',
    listener: (cert: WorkloadCertificate, reason: 'initial' | 'rotation') => void,
  ): unknown;
}

/** `spiffe://<trust-domain>/` of a SPIFFE ID ('' when it is not one). */
export function trustDomainPrefix(spiffeId: string): string {
  if (!spiffeId.startsWith('spiffe://')) return '';
  const slash = spiffeId.indexOf('/', 'spiffe://'.length);
  return slash < 0 ? '' : spiffeId.slice(0, slash + 1);
}

/*
 * Resumed sessions (tickets) live OpenSSL's default 7200 s, as Envoy's session_timeout default;
 * a resumed connection skips the certificate exchange and keeps the identity verified when the
 * session was made. A new certificate makes a new context with new ticket keys, so rotation
 * ends every session made before it. (Setting `sessionTimeout` here made rare handshakes fail
 * across 3-second rotations in test/proxy/mtls.test.ts; not investigated further.)
 */
const SESSION_ID_CONTEXT = 'isthmus-mesh-mtls';

/**
 * The context of a workload certificate, client and server side, with TLS session resumption.
 * OpenSSL refuses to resume a session with a verified client certificate unless the server
 * context has a session id context (and then fails the handshake with an internal error, so a
 * peer caching sessions, as Envoy does, would break): tls.Server sets one on its contexts; our
 * inbound path wraps sockets itself, so it sets one here. Should Node's internal setter ever be
 * missing, tickets are turned off instead and every handshake is full.
 */
export function meshSecureContext(cert: Pick<WorkloadCertificate, 'keyPem' | 'certChainPem' | 'rootPem'>) {
  const ctx = tls.createSecureContext({
    key: cert.keyPem,
    cert: cert.certChainPem,
    ca: cert.rootPem,
    minVersion: 'TLSv1.2',
  });
  const native = (ctx as unknown as { context?: { setSessionIdContext?: (id: string) => void } }).context;
  if (typeof native?.setSessionIdContext === 'function') native.setSessionIdContext(SESSION_ID_CONTEXT);
  else
    return tls.createSecureContext({
      key: cert.keyPem,
      cert: cert.certChainPem,
      ca: cert.rootPem,
      minVersion: 'TLSv1.2',
      secureOptions: constants.SSL_OP_NO_TICKET,
    });
  return ctx;
}

export class MeshIdentity {
  /** Context of the current certificate; null until the first one arrived. */
  context: tls.SecureContext | null = null;
  /** Bumped on every new certificate. */
  version = 0;
  spiffeId = '';
  /** `spiffe://<trust-domain>/`: peers must present an identity under it. */
  trustPrefix = '';
  notAfter: Date | null = null;
  private readonly source: CertificateSource;
  private readonly log: Logger;
  private readonly onCertificate: (cert: WorkloadCertificate, reason: 'initial' | 'rotation') => void;

  constructor(source: CertificateSource, log: Logger) {
    this.source = source;
    this.log = log;
    this.onCertificate = (cert, reason) => this.install(cert, reason);
    source.on('certificate', this.onCertificate);
    const cert = source.current();
    if (cert !== undefined) this.install(cert, 'initial');
  }

  get ready(): boolean {
    return this.context !== null;
  }

  /** Builds the context of a new certificate and makes it current (new connections use it). */
  install(cert: WorkloadCertificate, reason: 'initial' | 'rotation' = 'rotation'): void {
    let ctx: tls.SecureContext;
    try {
      ctx = meshSecureContext(cert);
    } catch (err) {
      // Keep the previous context: a bad certificate must not take the workload offline.
      this.log.error(
        `mTLS: workload certificate unusable, keeping the previous one: ${(err as Error).message}`,
      );
      return;
    }
    this.context = ctx;
    this.version++;
    this.spiffeId = cert.spiffeId;
    this.trustPrefix = trustDomainPrefix(cert.spiffeId);
    this.notAfter = cert.notAfter;
    this.log.info(
      `mTLS: ${reason === 'initial' ? 'using' : 'rotated to'} certificate for ${cert.spiffeId} ` +
        `(valid until ${cert.notAfter.toISOString()})`,
    );
  }

  close(): void {
    this.source.off('certificate', this.onCertificate);
  }
}
