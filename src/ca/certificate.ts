/**
 * Leaf certificates signed by native crypto with whatever key the CA has (RSA from our
 * self-signed root, or an operator's RSA/EC intermediate from `cacerts`). The leaf's public key
 * is copied verbatim from the CSR, so workload keys of any accepted type work.
 */
import {
  createHash,
  createPrivateKey,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { algorithmIdentifier, OID, type SignatureAlgorithm, signatureAlgorithmFor } from './algorithms.js';
import { generalNames } from './csr.js';
import {
  bitString,
  bitStringBytes,
  bool,
  bytesOf,
  children,
  contentOf,
  decodeOid,
  explicit,
  namedBits,
  octetString,
  oid,
  pemBlocks,
  readRoot,
  seq,
  set,
  smallInteger,
  TAG,
  time,
  tlv,
  toPem,
  unsignedInteger,
  utf8,
} from './der.js';

/** What signing needs from the CA certificate and key, prepared once. */
export interface Issuer {
  /** The CA certificate's subject Name, byte for byte: the leaf's issuer must match it exactly. */
  subjectDer: Buffer;
  /** The CA's subject key identifier, repeated as the leaf's authority key identifier. */
  keyId: Buffer;
  privateKey: KeyObject;
  algorithm: SignatureAlgorithm;
  /** A leaf never outlives its issuer. */
  notAfter: Date;
}

interface CertFields {
  subjectDer: Buffer;
  spkiDer: Buffer;
  subjectKeyId?: Buffer;
}

/** Subject, SubjectPublicKeyInfo and subjectKeyIdentifier of a DER certificate. */
export function certificateFields(der: Buffer): CertFields {
  const cert = readRoot(der, TAG.sequence);
  const tbs = children(der, cert)[0]!;
  const fields = children(der, tbs);
  const off = fields[0]?.tag === 0xa0 ? 1 : 0; // version is optional (v1 certificates)
  const subject = fields[off + 4];
  const spki = fields[off + 5];
  if (!subject || !spki) throw new Error('certificate is missing its subject or public key');
  let subjectKeyId: Buffer | undefined;
  const extsWrapper = fields.find((f) => f.tag === 0xa3);
  if (extsWrapper) {
    const exts = children(der, extsWrapper)[0]!;
    for (const ext of children(der, exts)) {
      const parts = children(der, ext);
      if (decodeOid(contentOf(der, parts[0]!)) !== OID.subjectKeyIdentifier) continue;
      const inner = contentOf(der, parts[parts.length - 1]!); // OCTET STRING holding an OCTET STRING
      subjectKeyId = Buffer.from(contentOf(inner, readRoot(inner, TAG.octetString)));
    }
  }
  return {
    subjectDer: Buffer.from(bytesOf(der, subject)),
    spkiDer: Buffer.from(bytesOf(der, spki)),
    ...(subjectKeyId ? { subjectKeyId } : {}),
  };
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifierOf(spkiDer: Buffer): Buffer {
  const spki = readRoot(spkiDer, TAG.sequence);
  const bits = children(spkiDer, spki)[1]!;
  return createHash('sha1')
    .update(bitStringBytes(contentOf(spkiDer, bits)))
    .digest();
}

/** Prepares a CA certificate + key for signing; throws when the key does not belong to the cert. */
export function issuerFromPem(certPem: string, keyPem: string): Issuer {
  const x509 = new X509Certificate(certPem);
  const privateKey = createPrivateKey(keyPem);
  if (!x509.checkPrivateKey(privateKey)) throw new Error('the CA key does not match the CA certificate');
  if (!x509.ca) throw new Error(`certificate ${x509.subject} is not a CA (basicConstraints cA is false)`);
  const der = pemBlocks(certPem, 'CERTIFICATE')[0]!;
  const fields = certificateFields(der);
  return {
    subjectDer: fields.subjectDer,
    keyId: fields.subjectKeyId ?? keyIdentifierOf(fields.spkiDer),
    privateKey,
    algorithm: signatureAlgorithmFor(privateKey),
    notAfter: new Date(x509.validTo),
  };
}

export interface LeafSpec {
  spkiDer: Buffer;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  /** Workload certificates have an empty subject (identity is the SAN), as Istio issues them. */
  commonName?: string;
  notBefore: Date;
  notAfter: Date;
  serverAuth: boolean;
  clientAuth: boolean;
  /** keyEncipherment only makes sense for RSA keys. */
  rsaKey: boolean;
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octetString(value)) : seq(oid(id), octetString(value));
}

function serialNumber(): Buffer {
  // 128 random bits, positive and without a leading zero byte (RFC 5280: at most 20 octets).
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b;
}

/** Builds and signs a leaf certificate; returns PEM. */
export function buildLeafCertificate(issuer: Issuer, spec: LeafSpec): string {
  const notAfter = new Date(Math.min(spec.notAfter.getTime(), issuer.notAfter.getTime()));
  const subject = spec.commonName ? seq(set(seq(oid(OID.commonName), utf8(spec.commonName)))) : seq();
  const ekus = [
    ...(spec.serverAuth ? [oid(OID.serverAuth)] : []),
    ...(spec.clientAuth ? [oid(OID.clientAuth)] : []),
  ];
  const extensions = [
    extension(OID.basicConstraints, true, seq()),
    // digitalSignature (bit 0), keyEncipherment (bit 2).
    extension(OID.keyUsage, true, namedBits(spec.rsaKey ? [0, 2] : [0])),
    extension(OID.extKeyUsage, false, seq(...ekus)),
    // RFC 5280 4.2.1.6: the SAN is critical when the subject is empty.
    extension(OID.subjectAltName, !spec.commonName, generalNames(spec)),
    extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, issuer.keyId))),
  ];
  const tbs = seq(
    explicit(0, smallInteger(2)),
    unsignedInteger(serialNumber()),
    algorithmIdentifier(issuer.algorithm),
    issuer.subjectDer,
    seq(time(spec.notBefore), time(notAfter)),
    subject,
    spec.spkiDer,
    explicit(3, seq(...extensions)),
  );
  const signature = sign(issuer.algorithm.hash, tbs, issuer.privateKey);
  return toPem('CERTIFICATE', seq(tbs, algorithmIdentifier(issuer.algorithm), bitString(signature)));
}
