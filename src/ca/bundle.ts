/**
 * The CA's key material: the signing certificate and key, the intermediates between it and
 * the root, and the root(s) workloads trust. Either our self-signed root (signing cert = root)
 * or an operator's intermediate plugged in through the `cacerts` Secret; the path from the
 * signing certificate to a root is verified before anything is signed with it.
 */
import { X509Certificate } from 'node:crypto';
import { type Issuer, issuerFromPem } from './certificate.js';
import { splitCertificates } from './der.js';
import { createSelfSignedCa } from './x509.js';

export type CaSource = 'self-signed' | 'plugged';

export interface CaMaterial {
  /** ca-cert.pem: the certificate the CA signs with. */
  signingCertPem: string;
  /** ca-key.pem */
  signingKeyPem: string;
  /** cert-chain.pem: the signing cert's chain up to the root (may include both ends, or be empty). */
  certChainPem?: string;
  /** root-cert.pem: the trust anchor(s) published to workloads. */
  rootCertPem: string;
}

export interface CaBundle {
  source: CaSource;
  issuer: Issuer;
  signingCertPem: string;
  /** Certificates sent after every leaf: signing cert and intermediates, never a root. */
  intermediatesPem: string[];
  /** One PEM string holding every root (a plug-in may carry several during a root migration). */
  rootCertPem: string;
  /** When the signing certificate expires; no leaf outlives it. */
  notAfter: Date;
}

export class CaBundleError extends Error {
  override name = 'CaBundleError';
}

function parse(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new CaBundleError(`${what} is not a PEM certificate: ${(err as Error).message}`);
  }
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/** Validates the material and prepares it for signing. Throws CaBundleError saying what is wrong. */
export function loadCaBundle(m: CaMaterial, source: CaSource, now = new Date()): CaBundle {
  const rootPems = splitCertificates(m.rootCertPem);
  if (rootPems.length === 0) throw new CaBundleError('root-cert.pem holds no certificate');
  const roots = rootPems.map((p, i) => parse(p, `root-cert.pem certificate #${i + 1}`));
  const signing = parse(m.signingCertPem, 'ca-cert.pem');
  let issuer: Issuer;
  try {
    issuer = issuerFromPem(m.signingCertPem, m.signingKeyPem);
  } catch (err) {
    throw new CaBundleError(`ca-cert.pem / ca-key.pem: ${(err as Error).message}`);
  }
  if (new Date(signing.validTo) <= now)
    throw new CaBundleError(`ca-cert.pem expired at ${new Date(signing.validTo).toISOString()}`);

  const isRoot = (c: X509Certificate) => roots.some((r) => r.fingerprint256 === c.fingerprint256);
  const path: X509Certificate[] = [];
  if (!isRoot(signing)) {
    path.push(signing);
    for (const [i, pem] of splitCertificates(m.certChainPem ?? '').entries()) {
      const c = parse(pem, `cert-chain.pem certificate #${i + 1}`);
      if (isRoot(c) || path.some((p) => p.fingerprint256 === c.fingerprint256)) continue;
      path.push(c);
    }
    for (let i = 0; i + 1 < path.length; i++) {
      if (!issuedBy(path[i]!, path[i + 1]!))
        throw new CaBundleError(
          `cert-chain.pem is out of order: "${path[i]!.subject}" is not signed by "${path[i + 1]!.subject}"`,
        );
    }
    const top = path[path.length - 1]!;
    if (!roots.some((r) => issuedBy(top, r)))
      throw new CaBundleError(`"${top.subject}" is not signed by any certificate in root-cert.pem`);
  }
  return {
    source,
    issuer,
    signingCertPem: signing.toString(),
    intermediatesPem: path.map((c) => c.toString()),
    rootCertPem: rootPems.join(''),
    notAfter: issuer.notAfter,
  };
}

export const SELF_SIGNED_ROOT_VALIDITY_DAYS = 10 * 365;

/**
 * A new self-signed root for the trust domain (RSA 2048, 10 years, O=<trust domain> as istiod's).
 * The signing certificate is the root itself.
 */
export function createSelfSignedMaterial(trustDomain: string, now = new Date()): CaMaterial {
  const ca = createSelfSignedCa({
    commonName: 'Isthmus mesh root CA',
    organization: trustDomain,
    validityDays: SELF_SIGNED_ROOT_VALIDITY_DAYS,
    now,
  });
  return { signingCertPem: ca.certPem, signingKeyPem: ca.keyPem, rootCertPem: ca.certPem };
}
