/**
 * Key types and signature algorithms the mesh accepts, mapped between X.509 OIDs and Node's
 * native crypto. One table so the CSR parser, the certificate builder and the agent agree.
 */
import type { KeyObject } from 'node:crypto';
import { nullValue, oid, seq } from './der.js';

export const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  extensionRequest: '1.2.840.113549.1.9.14',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export interface SignatureAlgorithm {
  oid: string;
  /** Digest for crypto.sign/verify; null for Ed25519, which hashes internally. */
  hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** RSA PKCS#1 v1.5 identifiers carry an explicit NULL parameter; ECDSA and Ed25519 none. */
  nullParams: boolean;
}

const BY_OID = new Map<string, SignatureAlgorithm>([
  [OID.sha256WithRSA, { oid: OID.sha256WithRSA, hash: 'sha256', nullParams: true }],
  [OID.sha384WithRSA, { oid: OID.sha384WithRSA, hash: 'sha384', nullParams: true }],
  [OID.sha512WithRSA, { oid: OID.sha512WithRSA, hash: 'sha512', nullParams: true }],
  [OID.ecdsaWithSha256, { oid: OID.ecdsaWithSha256, hash: 'sha256', nullParams: false }],
  [OID.ecdsaWithSha384, { oid: OID.ecdsaWithSha384, hash: 'sha384', nullParams: false }],
  [OID.ecdsaWithSha512, { oid: OID.ecdsaWithSha512, hash: 'sha512', nullParams: false }],
  [OID.ed25519, { oid: OID.ed25519, hash: null, nullParams: false }],
]);

/** Accepted signature algorithms; SHA-1 and MD5 based ones are deliberately absent. */
export function signatureAlgorithmByOid(o: string): SignatureAlgorithm | undefined {
  return BY_OID.get(o);
}

export function algorithmIdentifier(alg: SignatureAlgorithm): Buffer {
  return alg.nullParams ? seq(oid(alg.oid), nullValue()) : seq(oid(alg.oid));
}

/** The algorithm a key signs with (SHA-256 for RSA and P-256, SHA-384 for P-384). */
export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') return BY_OID.get(OID.sha256WithRSA)!;
  if (type === 'ed25519') return BY_OID.get(OID.ed25519)!;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return BY_OID.get(OID.ecdsaWithSha256)!;
    if (curve === 'secp384r1') return BY_OID.get(OID.ecdsaWithSha384)!;
    throw new Error(`unsupported EC curve ${curve ?? 'unknown'} (use P-256 or P-384)`);
  }
  throw new Error(`unsupported key type ${type ?? 'unknown'}`);
}

/**
 * Why a public key is not acceptable for a workload certificate, or undefined when it is:
 * RSA of at least 2048 bits, EC on P-256 or P-384 (what TLS peers in a mesh universally speak).
 */
export function rejectWeakKey(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `RSA key of ${bits} bits is too small (at least 2048)`;
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1' || curve === 'secp384r1'
      ? undefined
      : `EC curve ${curve ?? 'unknown'} is not accepted (P-256 or P-384)`;
  }
  return `key type ${type ?? 'unknown'} is not accepted (RSA >= 2048 or EC P-256/P-384)`;
}
