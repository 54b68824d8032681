/**
 * The workload's own mesh identity as the proxy uses it: one tls.SecureContext per
 * certificate version (building a context costs more than a handshake, so connections share
 * it), swapped atomically when the agent rotates the certificate. Connections already open
 * keep the context they were made with; new ones take the current one, client and server side.
 */
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
      ctx = tls.createSecureContext({
        key: cert.keyPem,
        cert: cert.certChainPem,
        ca: cert.rootPem,
        minVersion: 'TLSv1.2',
      });
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
