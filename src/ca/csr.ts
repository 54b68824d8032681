/**
 * PKCS#10 certificate signing requests, built and checked with Node's native crypto.
 *
 * The agent's workload key is EC P-256 by default: native key generation takes well under a
 * millisecond (RSA-2048 takes tens), and ECDSA makes a TLS handshake several times cheaper for
 * the server side than an RSA-2048 signature. node-forge cannot build or verify EC CSRs, so the
 * CSR is laid out with der.ts and signed by crypto.sign. RSA-2048 remains available.
 */
import {
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  sign as nativeSign,
  verify as nativeVerify,
} from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import {
  algorithmIdentifier,
  OID,
  rejectWeakKey,
  signatureAlgorithmByOid,
  signatureAlgorithmFor,
} from './algorithms.js';
import {
  bitString,
  bitStringBytes,
  bytesOf,
  children,
  contentOf,
  DerError,
  decodeOid,
  expectTag,
  octetString,
  oid,
  pemBlocks,
  readRoot,
  seq,
  set,
  smallInteger,
  TAG,
  tlv,
  toPem,
  utf8,
} from './der.js';

export type WorkloadKeyType = 'ec-p256' | 'rsa-2048';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A fresh private key for a workload; it never leaves the process that generated it. */
export async function generateWorkloadKey(type: WorkloadKeyType = 'ec-p256'): Promise<KeyObject> {
  const pair =
    type === 'rsa-2048'
      ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
      : await generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
  return pair.privateKey;
}

export interface CsrOptions {
  commonName?: string;
  /** Requested SANs; a mesh CA ignores them and decides the identity itself. */
  uris?: string[];
  dnsNames?: string[];
}

/** GeneralName encodings: dNSName [2], uniformResourceIdentifier [6], iPAddress [7] (implicit). */
export function generalNames(names: { uris?: string[]; dnsNames?: string[]; ips?: string[] }): Buffer {
  const items: Buffer[] = [];
  for (const d of names.dnsNames ?? []) items.push(tlv(0x82, Buffer.from(d, 'ascii')));
  for (const u of names.uris ?? []) items.push(tlv(0x86, Buffer.from(u, 'ascii')));
  for (const ip of names.ips ?? []) items.push(tlv(0x87, ipBytes(ip)));
  return seq(...items);
}

function ipBytes(ip: string): Buffer {
  const v = isIP(ip);
  if (v === 4) return Buffer.from(ip.split('.').map((p) => Number(p)));
  if (v === 6) {
    const [head = '', tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
    return out;
  }
  throw new Error(`not an IP address: ${ip}`);
}

/** Builds and signs a CSR for `privateKey`; returns PEM. */
export function createCsr(privateKey: KeyObject, opts: CsrOptions = {}): string {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const subject = opts.commonName ? seq(set(seq(oid(OID.commonName), utf8(opts.commonName)))) : seq();
  const wantsSan = (opts.uris?.length ?? 0) + (opts.dnsNames?.length ?? 0) > 0;
  const sanRequest = seq(
    oid(OID.extensionRequest),
    set(seq(seq(oid(OID.subjectAltName), octetString(generalNames(opts))))),
  );
  // `attributes [0] IMPLICIT SET OF Attribute`: the SET's own tag is replaced by [0].
  const info = seq(smallInteger(0), subject, spki, tlv(0xa0, wantsSan ? sanRequest : Buffer.alloc(0)));
  const alg = signatureAlgorithmFor(privateKey);
  const signature = nativeSign(alg.hash, info, privateKey);
  return toPem('CERTIFICATE REQUEST', seq(info, algorithmIdentifier(alg), bitString(signature)));
}

export type CsrErrorCode = 'CSR_MALFORMED' | 'CSR_SIGNATURE' | 'CSR_KEY_UNSUPPORTED';

export class CsrError extends Error {
  override name = 'CsrError';
  constructor(
    readonly code: CsrErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ParsedCsr {
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER, copied verbatim into the certificate. */
  spkiDer: Buffer;
  /** SAN URIs the requester asked for (informational: the CA never trusts them). */
  requestedUris: string[];
}

/**
 * Parses a PEM CSR and checks its self-signature (proof that the requester holds the private
 * key). Throws CsrError: CSR_MALFORMED, CSR_SIGNATURE (does not verify), CSR_KEY_UNSUPPORTED.
 */
export function parseCsr(pem: string): ParsedCsr {
  const blocks = pemBlocks(pem, 'CERTIFICATE REQUEST');
  if (blocks.length !== 1)
    throw new CsrError(
      'CSR_MALFORMED',
      blocks.length === 0 ? 'no PEM "CERTIFICATE REQUEST" block found' : 'more than one CSR in the PEM',
    );
  const der = blocks[0]!;
  let infoDer: Buffer;
  let spkiDer: Buffer;
  let algOid: string;
  let signature: Buffer;
  let requestedUris: string[];
  try {
    const root = readRoot(der, TAG.sequence);
    const [info, algId, sig] = children(der, root);
    expectTag(info, TAG.sequence, 'certificationRequestInfo');
    expectTag(algId, TAG.sequence, 'signatureAlgorithm');
    expectTag(sig, TAG.bitString, 'signature');
    const [version, , spki, attrs] = children(der, info!);
    expectTag(version, TAG.integer, 'version');
    if (!contentOf(der, version!).equals(Buffer.from([0]))) throw new DerError('CSR version must be 1 (0)');
    expectTag(spki, TAG.sequence, 'subjectPKInfo');
    infoDer = bytesOf(der, info!);
    spkiDer = bytesOf(der, spki!);
    algOid = decodeOid(contentOf(der, expectTag(children(der, algId!)[0], TAG.oid, 'algorithm OID')));
    signature = bitStringBytes(contentOf(der, sig!));
    requestedUris = attrs ? requestedSanUris(der, attrs) : [];
  } catch (err) {
    if (err instanceof DerError) throw new CsrError('CSR_MALFORMED', `CSR is not valid DER: ${err.message}`);
    throw err;
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (err) {
    throw new CsrError('CSR_MALFORMED', `CSR public key unreadable: ${(err as Error).message}`);
  }
  const weak = rejectWeakKey(publicKey);
  if (weak) throw new CsrError('CSR_KEY_UNSUPPORTED', weak);
  const alg = signatureAlgorithmByOid(algOid);
  if (!alg) throw new CsrError('CSR_KEY_UNSUPPORTED', `CSR signature algorithm ${algOid} is not accepted`);
  const keyMatchesAlg =
    (publicKey.asymmetricKeyType === 'rsa' && alg.nullParams) ||
    (publicKey.asymmetricKeyType === 'ec' && !alg.nullParams && alg.hash !== null);
  let ok = false;
  try {
    ok = keyMatchesAlg && nativeVerify(alg.hash, infoDer, publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrError('CSR_SIGNATURE', 'CSR signature does not verify with the key it carries');
  return { publicKey, spkiDer: Buffer.from(spkiDer), requestedUris };
}

/** URIs in a subjectAltName inside the extensionRequest attribute, if any. */
function requestedSanUris(der: Buffer, attrs: ReturnType<typeof expectTag>): string[] {
  const out: string[] = [];
  if (attrs.tag !== 0xa0) return out;
  for (const attr of children(der, attrs)) {
    const [type, values] = children(der, attr);
    if (!type || !values || decodeOid(contentOf(der, type)) !== OID.extensionRequest) continue;
    for (const exts of children(der, values)) {
      for (const ext of children(der, exts)) {
        const parts = children(der, ext);
        if (!parts[0] || decodeOid(contentOf(der, parts[0])) !== OID.subjectAltName) continue;
        const value = parts[parts.length - 1]!;
        const names = contentOf(der, value);
        const seqTlv = readRoot(names, TAG.sequence);
        for (const gn of children(names, seqTlv)) {
          if (gn.tag === 0x86) out.push(contentOf(names, gn).toString('ascii'));
        }
      }
    }
  }
  return out;
}
