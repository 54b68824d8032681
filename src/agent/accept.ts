/**
 * Checks what the CA sent before the agent uses it: the leaf is for our key, the chain verifies
 * up to the root the CA named, and the leaf carries exactly one SPIFFE URI SAN.
 */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { splitCertificates } from '../ca/der.js';
import type { IssuedCertificates } from './ca-client.js';

export interface WorkloadCertificate {
  /** Leaf then intermediates, PEM, ready for tls `cert`. */
  certChainPem: string;
  /** PKCS#8 PEM of the key generated in this process, ready for tls `key`. */
  keyPem: string;
  /** Trust anchor(s) for peers, PEM, ready for tls `ca`. */
  rootPem: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
  /** Local time the certificate arrived; rotation is scheduled from here. */
  receivedAt: Date;
}

export class CertificateRejectedError extends Error {
  override name = 'CertificateRejectedError';
}

/** The URI SANs of a certificate (Node formats them as `URI:<value>`, comma separated). */
export function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

export function acceptCertificate(
  issued: IssuedCertificates,
  privateKey: KeyObject,
  receivedAt: Date,
): WorkloadCertificate {
  const chainPems = issued.certChain.flatMap((c) => splitCertificates(c));
  const rootPems = splitCertificates(issued.rootCert);
  if (chainPems.length === 0) throw new CertificateRejectedError('CA returned no certificate');
  if (rootPems.length === 0) throw new CertificateRejectedError('CA returned no root certificate');
  const chain = chainPems.map((p) => new X509Certificate(p));
  const roots = rootPems.map((p) => new X509Certificate(p));
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(privateKey))
    throw new CertificateRejectedError('issued certificate is not for the key this agent generated');
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey))
      throw new CertificateRejectedError(
        `certificate chain is broken after "${chain[i]!.subject || 'leaf'}"`,
      );
  }
  const top = chain[chain.length - 1]!;
  if (!roots.some((r) => top.checkIssued(r) && top.verify(r.publicKey)))
    throw new CertificateRejectedError('certificate chain does not verify against the root the CA returned');
  const spiffe = uriSans(leaf).filter((u) => u.startsWith('spiffe://'));
  if (spiffe.length !== 1)
    throw new CertificateRejectedError(`expected exactly one SPIFFE URI SAN, found ${spiffe.length}`);
  return {
    certChainPem: chainPems.join(''),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    rootPem: rootPems.join(''),
    spiffeId: spiffe[0]!,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    receivedAt,
  };
}
