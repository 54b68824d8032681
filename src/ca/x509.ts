/**
 * X.509 building blocks (node-forge for certificates; keys from Node's native crypto, which is
 * orders of magnitude faster than forge's pure-JS RSA). Shared by the webhook serving
 * certificate and the mesh CA.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export function generateRsaKeyPem(bits = 2048): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function serial(): string {
  // Positive 128-bit serial (first bit cleared so it is not read as negative).
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

function publicKeyOf(keyPem: string): forge.pki.PublicKey {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return forge.pki.setRsaPublicKey(key.n, key.e);
}

function subjectAltNames(names: string[]): Array<Record<string, unknown>> {
  return names.map((n) => {
    if (isIP(n)) return { type: 7, ip: n };
    if (n.includes('://')) return { type: 6, value: n };
    return { type: 2, value: n };
  });
}

export interface CaOptions {
  commonName: string;
  organization?: string;
  validityDays: number;
  now?: Date;
}

export function createSelfSignedCa(opts: CaOptions): KeyPairPem {
  const keyPem = generateRsaKeyPem(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKeyOf(keyPem);
  cert.serialNumber = serial();
  const now = opts.now ?? new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + opts.validityDays * 86_400_000);
  const subject = [
    { name: 'commonName', value: opts.commonName },
    { name: 'organizationName', value: opts.organization ?? 'Isthmus' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

export interface LeafOptions {
  /** DNS names, IP addresses and URIs (e.g. SPIFFE IDs) for the subjectAltName. */
  names: string[];
  commonName?: string;
  validityHours: number;
  serverAuth?: boolean;
  clientAuth?: boolean;
  /** Sign this public key (from a CSR) instead of generating a key pair. */
  publicKeyPem?: string;
  now?: Date;
}

/** Issues a leaf certificate signed by `ca`; returns the key too when it generated one. */
export function issueLeaf(ca: KeyPairPem, opts: LeafOptions): { certPem: string; keyPem?: string } {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const keyPem = opts.publicKeyPem ? undefined : generateRsaKeyPem(2048);
  const cert = forge.pki.createCertificate();
  cert.publicKey = opts.publicKeyPem ? forge.pki.publicKeyFromPem(opts.publicKeyPem) : publicKeyOf(keyPem!);
  cert.serialNumber = serial();
  const now = opts.now ?? new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + opts.validityHours * 3_600_000);
  cert.setSubject(opts.commonName ? [{ name: 'commonName', value: opts.commonName }] : []);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: opts.serverAuth ?? true, clientAuth: opts.clientAuth ?? false },
    { name: 'subjectAltName', altNames: subjectAltNames(opts.names), critical: !opts.commonName },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), ...(keyPem ? { keyPem } : {}) };
}

export interface CertSummary {
  notBefore: Date;
  notAfter: Date;
  names: string[];
}

/** Reads validity and SANs; throws with a clear message when the PEM is not a certificate. */
export function describeCert(certPem: string): CertSummary {
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(certPem);
  } catch (err) {
    throw new Error(`not a PEM X.509 certificate: ${err instanceof Error ? err.message : String(err)}`);
  }
  const san = cert.getExtension('subjectAltName') as {
    altNames?: Array<{ type: number; value?: string; ip?: string }>;
  } | null;
  const names = (san?.altNames ?? []).map((a) => (a.type === 7 ? a.ip! : a.value!));
  return { notBefore: cert.validity.notBefore, notAfter: cert.validity.notAfter, names };
}
