/**
 * The signing half of the mesh CA, free of HTTP and Kubernetes: turns (CSR, proven service
 * account, requested lifetime) into a certificate chain. The identity comes only from the
 * caller's authentication; whatever names the CSR asks for are ignored.
 */
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { CaBundle } from './bundle.js';
import { buildLeafCertificate } from './certificate.js';
import { CsrError, parseCsr } from './csr.js';
import { splitCertificates } from './der.js';
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
  /** Roots of replaced bundles still trusted, each until its last leaf can have expired. */
  private retained: Array<{ pem: string; fingerprint: string; until: number }> = [];
  /** Latest notAfter of any leaf signed with the current bundle (ms). */
  private issuedUntil = 0;
  private published: { pem: string; validUntil: number } | undefined;

  constructor(bundle: CaBundle, opts: MeshCaOptions) {
    this.bundle = bundle;
    this.trustDomain = opts.trustDomain;
    this.defaultTtlSeconds = opts.defaultTtlSeconds ?? DEFAULT_WORKLOAD_CERT_TTL_SECONDS;
    this.maxTtlSeconds = opts.maxTtlSeconds ?? MAX_WORKLOAD_CERT_TTL_SECONDS;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * The roots workloads must trust: the current bundle's, then the roots of bundles replaced by
   * setBundle() while leaves they signed may still be in use (see setBundle).
   */
  get rootCertPem(): string {
    const now = this.now().getTime();
    if (this.published && now < this.published.validUntil) return this.published.pem;
    this.retained = this.retained.filter((r) => r.until > now);
    const pem = this.bundle.rootCertPem + this.retained.map((r) => r.pem).join('');
    this.published = { pem, validUntil: Math.min(...this.retained.map((r) => r.until), Infinity) };
    return pem;
  }

  /** The signing certificate in use (PEM). */
  get signingCertPem(): string {
    return this.bundle.signingCertPem;
  }

  get source(): CaBundle['source'] {
    return this.bundle.source;
  }

  /**
   * Swaps the signing material (a created or rotated `cacerts`); in-flight signings finish with
   * the old one. Roots of the old bundle that the new one lacks stay in rootCertPem until every
   * leaf they may have signed has expired: the latest notAfter issued by this process, and at
   * least the default lifetime from now (leaves issued before a restart are not tracked), never
   * beyond the old root's own expiry. Workloads that renew meanwhile trust old and new roots, so
   * peers still holding old-root leaves keep verifying.
   */
  setBundle(bundle: CaBundle): void {
    const now = this.now().getTime();
    const until = Math.max(this.issuedUntil, now + this.defaultTtlSeconds * 1000);
    const keep = new Set(
      splitCertificates(bundle.rootCertPem).map((p) => new X509Certificate(p).fingerprint256),
    );
    const previous = [
      ...splitCertificates(this.bundle.rootCertPem).map((pem) => ({ pem, until })),
      ...this.retained,
    ];
    const retained: typeof this.retained = [];
    for (const r of previous) {
      const cert = new X509Certificate(r.pem);
      const fingerprint = cert.fingerprint256;
      if (keep.has(fingerprint)) continue;
      keep.add(fingerprint);
      const capped = Math.min(r.until, new Date(cert.validTo).getTime());
      if (capped > now) retained.push({ pem: cert.toString(), fingerprint, until: capped });
    }
    this.retained = retained;
    this.bundle = bundle;
    this.issuedUntil = 0;
    this.published = undefined;
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
    if (bundle === this.bundle && notAfter.getTime() > this.issuedUntil)
      this.issuedUntil = notAfter.getTime();
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
      rootCert: this.rootCertPem,
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
