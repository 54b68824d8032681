/** Test-only key material and tokens. Every key here is generated per run and used only in tests. */
import { request } from 'node:https';
import forge from 'node-forge';
import type { CaMaterial } from '../../src/ca/bundle.js';
import { createSelfSignedCa, generateRsaKeyPem, type KeyPairPem } from '../../src/ca/x509.js';

export function makeRoot(cn = 'test root'): KeyPairPem {
  return createSelfSignedCa({ commonName: cn, organization: 'cluster.local', validityDays: 365 });
}

/** An intermediate CA signed by `parent` (forge, RSA), as an operator's cacerts would hold. */
export function makeIntermediate(
  parent: KeyPairPem,
  cn = 'test intermediate',
  validityDays = 180,
): KeyPairPem {
  const keyPem = generateRsaKeyPem(2048);
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const parentCert = forge.pki.certificateFromPem(parent.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = '0a1b2c3d';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + validityDays * 86_400_000);
  cert.setSubject([
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: 'cluster.local' },
  ]);
  cert.setIssuer(parentCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(parent.keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

interface PluggedFixture {
  root: KeyPairPem;
  intermediate: KeyPairPem;
  material: CaMaterial;
}
let plugged: PluggedFixture | undefined;

/**
 * cacerts-style material: root -> intermediate, signing with the intermediate. Made once per
 * run (forge's pure-JS RSA signing takes a while).
 */
export function pluggedMaterialFixture(): PluggedFixture {
  plugged ??= makePlugged();
  return plugged;
}

function makePlugged(): PluggedFixture {
  const root = makeRoot('plugged root');
  const intermediate = makeIntermediate(root);
  return {
    root,
    intermediate,
    material: {
      signingCertPem: intermediate.certPem,
      signingKeyPem: intermediate.keyPem,
      certChainPem: intermediate.certPem + root.certPem,
      rootCertPem: root.certPem,
    },
  };
}

/** An unsigned JWT-shaped token: enough for the CA's local checks; a fake TokenReview does the rest. */
export function fakeJwt(claims: Record<string, unknown>): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}.c2lnbmF0dXJl`;
}

export interface PostResult {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs raw bytes to the CA over HTTPS trusting `rootPem`. */
export function postRaw(
  port: number,
  rootPem: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  path = '/v1/certificates',
  method = 'POST',
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, ca: rootPem, agent: false, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(text) as Record<string, unknown>;
          } catch {
            parsed = { text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function postCsr(
  port: number,
  rootPem: string,
  token: string | undefined,
  payload: unknown,
): Promise<PostResult> {
  return postRaw(port, rootPem, JSON.stringify(payload), {
    'content-type': 'application/json',
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  });
}
