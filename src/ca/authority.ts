/**
 * The signing half of the mesh CA, free of HTTP and Kubernetes: turns (CSR, proven service
 * account, requested lifetime) into a certificate chain. The identity comes only from the
 * caller's authentication; whatever names the CSR asks for are ignored.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { isIP } from 'node:net';
import type { CaBundle } from './bundle.js';
import { buildLeafCertificate } from './certificate.js';
import { CsrError, parseCsr } from './csr.js';
import { CaError } from './errors.js';
import { type ServiceAccountRef, spiffeIdFor } from './spiffe.js';

export const DEFAULT_WORKLOAD_CERT_TTL_SECONDS = 24 * 3600;
/** istiod's MAX_WORKLOAD_CERT_TTL default. */
export const MAX_WORKLOAD_CERT_TTL_SECONDS = 90 * 24 * 3600;
/** Leaves are back-dated this much so a peer whose clock is slightly behind accepts them. */
const CLOCK_SKEW_MS = 60_000;

export interface MeshCaOptions {
  trustDomain: string;
  defaultTtlSeconds?: number;
  maxTtlSeconds?: number;
  now?: () => Date;
}

export interface SignedWorkload {
  /** Leaf first, then the intermediates (never the root). One PEM certificate per element. */
  certChain: string[];
  /** The root(s) the chain verifies against. */
  rootCert: string;
  spiffeId: string;
  notAfter: Date;
}

/**
 * The lifetime to issue, in seconds: absent or 0 means the default; otherwise a positive
 * integer no larger than the maximum (rejected like istiod does, rather than silently cut).
 */
export function resolveTtlSeconds(requested: unknown, defaultTtl: number, maxTtl: number): number {
  if (requested === undefined || requested === null || requested === 0) return Math.min(defaultTtl, maxTtl);
  if (typeof requested !== 'number' || !Number.isInteger(requested) || requested < 0)
    throw new CaError(
      'CA_TTL_INVALID',
      `validitySeconds must be a positive integer, got ${JSON.stringify(requested)}`,
    );
  if (requested > maxTtl)
    throw new CaError('CA_TTL_INVALID', `validitySeconds ${requested} exceeds the maximum of ${maxTtl}`);
  return requested;
}

const CSR_TO_CA = {
  CSR_MALFORMED: 'CA_CSR_MALFORMED',
  CSR_SIGNATURE: 'CA_CSR_SIGNATURE',
  CSR_KEY_UNSUPPORTED: 'CA_CSR_KEY_UNSUPPORTED',
} as const;

export class MeshCa {
  readonly trustDomain: string;
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  private bundle: CaBundle;
  private readonly now: () => Date;

  constructor(bundle: CaBundle, opts: MeshCaOptions) {
    this.bundle = bundle;
    this.trustDomain = opts.trustDomain;
    this.defaultTtlSeconds = opts.defaultTtlSeconds ?? DEFAULT_WORKLOAD_CERT_TTL_SECONDS;
    this.maxTtlSeconds = opts.maxTtlSeconds ?? MAX_WORKLOAD_CERT_TTL_SECONDS;
    this.now = opts.now ?? (() => new Date());
  }

  get rootCertPem(): string {
    return this.bundle.rootCertPem;
  }

  get source(): CaBundle['source'] {
    return this.bundle.source;
  }

  /** Swaps the signing material (e.g. a rotated `cacerts`); in-flight signings finish with the old one. */
  setBundle(bundle: CaBundle): void {
    this.bundle = bundle;
  }

  /**
   * Signs the CSR's key for exactly `sa`'s SPIFFE identity. Throws CaError: CA_CSR_* when the CSR
   * is malformed, badly signed or has an unacceptable key; CA_TTL_INVALID for a bad lifetime.
   */
  signWorkload(csrPem: string, sa: ServiceAccountRef, validitySeconds?: unknown): SignedWorkload {
    const ttl = resolveTtlSeconds(validitySeconds, this.defaultTtlSeconds, this.maxTtlSeconds);
    let csr: ReturnType<typeof parseCsr>;
    try {
      csr = parseCsr(csrPem);
    } catch (err) {
      if (err instanceof CsrError) throw new CaError(CSR_TO_CA[err.code], err.message);
      throw err;
    }
    const spiffeId = spiffeIdFor(this.trustDomain, sa);
    const now = this.now();
    const bundle = this.bundle;
    const notAfter = new Date(Math.min(now.getTime() + ttl * 1000, bundle.notAfter.getTime()));
    const leaf = buildLeafCertificate(bundle.issuer, {
      spkiDer: csr.spkiDer,
      uris: [spiffeId],
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      serverAuth: true,
      clientAuth: true,
      rsaKey: csr.publicKey.asymmetricKeyType === 'rsa',
    });
    return {
      certChain: [leaf, ...bundle.intermediatesPem],
      rootCert: bundle.rootCertPem,
      spiffeId,
      notAfter,
    };
  }

  /**
   * A serving certificate for the CA's own HTTPS endpoint (DNS names and IPs), with a key
   * generated here and kept only in memory.
   */
  issueServingCert(
    names: string[],
    ttlSeconds: number,
  ): { certChainPem: string; keyPem: string; notAfter: Date } {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const now = this.now();
    const notAfter = new Date(Math.min(now.getTime() + ttlSeconds * 1000, this.bundle.notAfter.getTime()));
    const dnsNames = names.filter((n) => !isIP(n));
    const leaf = buildLeafCertificate(this.bundle.issuer, {
      spkiDer: createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
      dnsNames,
      ips: names.filter((n) => isIP(n)),
      ...(dnsNames[0] ? { commonName: dnsNames[0] } : {}),
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      serverAuth: true,
      clientAuth: false,
      rsaKey: false,
    });
    return {
      certChainPem: [leaf, ...this.bundle.intermediatesPem].join(''),
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      notAfter,
    };
  }
}
