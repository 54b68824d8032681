import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { MeshCa, resolveTtlSeconds } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { createCsr, generateWorkloadKey } from '../../src/ca/csr.js';
import { pemBlocks, toPem } from '../../src/ca/der.js';
import { CaError } from '../../src/ca/errors.js';
import { pluggedMaterialFixture } from './helpers.js';

const SA = { namespace: 'shop', serviceAccount: 'reviews' };
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function caErrorOf(fn: () => unknown): CaError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CaError);
    return err as CaError;
  }
  return expect.fail('expected a CaError');
}

describe('ca/authority', () => {
  let selfSigned: MeshCa;
  before(() => {
    selfSigned = new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
      trustDomain: 'cluster.local',
    });
  });

  it('signs only the proven identity, whatever the CSR asks for', async () => {
    const key = await generateWorkloadKey();
    const csr = createCsr(key, {
      uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'],
      dnsNames: ['evil'],
    });
    const signed = selfSigned.signWorkload(csr, SA);
    expect(signed.spiffeId).to.equal('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(signed.certChain).to.have.length(1);
    const leaf = new X509Certificate(signed.certChain[0]!);
    expect(leaf.subjectAltName).to.equal('URI:spiffe://cluster.local/ns/shop/sa/reviews');
    expect(leaf.subject ?? '').to.equal('');
    expect(leaf.ca).to.equal(false);
    expect(leaf.checkPrivateKey(key)).to.equal(true);
    const root = new X509Certificate(signed.rootCert);
    expect(leaf.checkIssued(root) && leaf.verify(root.publicKey)).to.equal(true);
    expect(leaf.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('defaults to 24 h, honours a requested lifetime and refuses one above the maximum', async () => {
    const csr = createCsr(await generateWorkloadKey());
    const now = Date.now();
    const dflt = selfSigned.signWorkload(csr, SA);
    expect(dflt.notAfter.getTime() - now).to.be.within(24 * 3600_000 - 5000, 24 * 3600_000 + 5000);
    const short = selfSigned.signWorkload(csr, SA, 4);
    expect(short.notAfter.getTime() - now).to.be.within(0, 6000);
    // notBefore is back-dated for clock skew between peers.
    expect(new Date(new X509Certificate(short.certChain[0]!).validFrom).getTime()).to.be.below(now - 30_000);
    expect(caErrorOf(() => selfSigned.signWorkload(csr, SA, 91 * 86400)).code).to.equal('CA_TTL_INVALID');
  });

  it('validates validitySeconds', () => {
    expect(resolveTtlSeconds(undefined, 86400, 100_000)).to.equal(86400);
    expect(resolveTtlSeconds(0, 86400, 100_000)).to.equal(86400);
    expect(resolveTtlSeconds(60, 86400, 100_000)).to.equal(60);
    for (const bad of [-1, 1.5, '60', true, 200_000]) {
      expect(() => resolveTtlSeconds(bad, 86400, 100_000), String(bad)).to.throw(CaError);
    }
  });

  it('maps CSR problems to 400 codes', async () => {
    expect(caErrorOf(() => selfSigned.signWorkload('garbage', SA)).code).to.equal('CA_CSR_MALFORMED');
    const csr = createCsr(await generateWorkloadKey());
    const der = pemBlocks(csr, 'CERTIFICATE REQUEST')[0]!;
    der[der.length - 3]! ^= 0x40;
    const err = caErrorOf(() => selfSigned.signWorkload(toPem('CERTIFICATE REQUEST', der), SA));
    expect(err.code).to.equal('CA_CSR_SIGNATURE');
    expect(err.status).to.equal(400);
  });

  it('signs RSA workload keys too (with keyEncipherment)', async () => {
    const key = await generateWorkloadKey('rsa-2048');
    const leaf = new X509Certificate(selfSigned.signWorkload(createCsr(key), SA).certChain[0]!);
    expect(leaf.checkPrivateKey(key)).to.equal(true);
  });

  it('with a plugged intermediate returns leaf + intermediate, verifying to the plugged root', async () => {
    const { material, root } = pluggedMaterialFixture();
    const ca = new MeshCa(loadCaBundle(material, 'plugged'), { trustDomain: 'cluster.local' });
    const signed = ca.signWorkload(createCsr(await generateWorkloadKey()), SA);
    expect(signed.certChain).to.have.length(2);
    const [leaf, mid] = signed.certChain.map((p) => new X509Certificate(p));
    const r = new X509Certificate(root.certPem);
    expect(leaf!.verify(mid!.publicKey) && mid!.verify(r.publicKey)).to.equal(true);
    expect(signed.rootCert).to.equal(r.toString());
  });

  it('never issues past the signing certificate', async () => {
    const { material } = pluggedMaterialFixture();
    const bundle = loadCaBundle(material, 'plugged');
    const ca = new MeshCa(bundle, { trustDomain: 'cluster.local', maxTtlSeconds: 400 * 86400 });
    const signed = ca.signWorkload(createCsr(await generateWorkloadKey()), SA, 365 * 86400);
    expect(signed.notAfter.getTime()).to.be.at.most(bundle.notAfter.getTime());
  });

  it('after setBundle trusts the replaced root until its last leaf has expired, then only the new one', async () => {
    let now = Date.now();
    const old = loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed');
    const ca = new MeshCa(old, {
      trustDomain: 'cluster.local',
      defaultTtlSeconds: 3600,
      now: () => new Date(now),
    });
    const issued = ca.signWorkload(createCsr(await generateWorkloadKey()), SA, 7200);
    const { material } = pluggedMaterialFixture();
    const plugged = loadCaBundle(material, 'plugged');
    ca.setBundle(plugged);
    const fps = (pem: string) =>
      pemBlocks(pem, 'CERTIFICATE').map((der) => new X509Certificate(der).fingerprint256);
    const newRoot = new X509Certificate(material.rootCertPem).fingerprint256;
    const oldRoot = new X509Certificate(old.rootCertPem).fingerprint256;
    expect(fps(ca.rootCertPem)).to.deep.equal([newRoot, oldRoot]);
    const next = ca.signWorkload(createCsr(await generateWorkloadKey()), SA);
    expect(fps(next.rootCert)).to.deep.equal([newRoot, oldRoot]);
    // The leaf issued under the old root lives 2 h (longer than the 1 h default): kept until then.
    now = issued.notAfter.getTime() - 1000;
    expect(fps(ca.rootCertPem)).to.deep.equal([newRoot, oldRoot]);
    now = issued.notAfter.getTime() + 1;
    expect(fps(ca.rootCertPem)).to.deep.equal([newRoot]);
    // Setting the same roots again keeps nothing extra.
    ca.setBundle(plugged);
    expect(fps(ca.rootCertPem)).to.deep.equal([newRoot]);
  });

  (hasOpenssl ? it : it.skip)(
    'openssl verifies the issued chain, also from an EC P-256 plugged CA',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'isthmus-ca-'));
      const run = (args: string[]) => {
        const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
        expect(r.status, r.stderr).to.equal(0);
        return r.stdout;
      };
      run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key']);
      run([
        'req',
        '-x509',
        '-new',
        '-key',
        'root.key',
        '-subj',
        '/O=cluster.local/CN=ec root',
        '-days',
        '30',
        '-out',
        'root.pem',
      ]);
      run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
      run([
        'req',
        '-new',
        '-key',
        'ca.key',
        '-subj',
        '/O=cluster.local/CN=ec intermediate',
        '-out',
        'ca.csr',
      ]);
      writeFileSync(
        join(dir, 'ext.cnf'),
        'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
      );
      run([
        'x509',
        '-req',
        '-in',
        'ca.csr',
        '-CA',
        'root.pem',
        '-CAkey',
        'root.key',
        '-CAcreateserial',
        '-days',
        '20',
        '-extfile',
        'ext.cnf',
        '-out',
        'ca.pem',
      ]);
      const { readFileSync } = await import('node:fs');
      const read = (f: string) => readFileSync(join(dir, f), 'utf8');
      const ca = new MeshCa(
        loadCaBundle(
          {
            signingCertPem: read('ca.pem'),
            signingKeyPem: read('ca.key'),
            rootCertPem: read('root.pem'),
            certChainPem: read('ca.pem'),
          },
          'plugged',
        ),
        { trustDomain: 'cluster.local' },
      );
      const signed = ca.signWorkload(createCsr(await generateWorkloadKey()), SA);
      writeFileSync(join(dir, 'leaf.pem'), signed.certChain[0]!);
      writeFileSync(join(dir, 'chain.pem'), signed.certChain.slice(1).join(''));
      expect(run(['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', 'leaf.pem'])).to.match(
        /leaf.pem: OK/,
      );
      const text = run(['x509', '-in', 'leaf.pem', '-noout', '-text']);
      expect(text).to.match(/ecdsa-with-SHA256/);
      expect(text).to.match(/URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/reviews/);
      expect(text).to.match(/Subject Alternative Name: critical/);
    },
  );
});
