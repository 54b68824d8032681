import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { acceptCertificate, CertificateRejectedError } from '../../src/agent/accept.js';
import { MeshCa } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { buildLeafCertificate, issuerFromPem } from '../../src/ca/certificate.js';
import { createCsr, generateWorkloadKey, parseCsr } from '../../src/ca/csr.js';
import { pluggedMaterialFixture } from '../ca/helpers.js';

const SA = { namespace: 'shop', serviceAccount: 'reviews' };

describe('agent/accept', () => {
  let ca: MeshCa;
  before(() => {
    ca = new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
      trustDomain: 'cluster.local',
    });
  });

  it('accepts a chain for our key and exposes PEMs ready for TLS', async () => {
    const key = await generateWorkloadKey();
    const signed = ca.signWorkload(createCsr(key), SA, 600);
    const got = acceptCertificate(
      { certChain: signed.certChain, rootCert: signed.rootCert },
      key,
      new Date(),
    );
    expect(got.spiffeId).to.equal('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(got.keyPem).to.match(/BEGIN PRIVATE KEY/);
    expect(new X509Certificate(got.certChainPem).checkPrivateKey(key)).to.equal(true);
    expect(got.notAfter.getTime()).to.be.closeTo(signed.notAfter.getTime(), 1000);
  });

  it('accepts a plugged chain (leaf + intermediate)', async () => {
    const { material } = pluggedMaterialFixture();
    const plugged = new MeshCa(loadCaBundle(material, 'plugged'), { trustDomain: 'cluster.local' });
    const key = await generateWorkloadKey();
    const signed = plugged.signWorkload(createCsr(key), SA);
    const got = acceptCertificate(
      { certChain: signed.certChain, rootCert: signed.rootCert },
      key,
      new Date(),
    );
    expect(got.certChainPem.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
  });

  it('refuses a certificate for another key', async () => {
    const key = await generateWorkloadKey();
    const signed = ca.signWorkload(createCsr(await generateWorkloadKey()), SA);
    expect(() =>
      acceptCertificate({ certChain: signed.certChain, rootCert: signed.rootCert }, key, new Date()),
    ).to.throw(CertificateRejectedError, /not for the key/);
  });

  it('refuses a chain that does not lead to the root', async () => {
    const key = await generateWorkloadKey();
    const signed = ca.signWorkload(createCsr(key), SA);
    const otherRoot = createSelfSignedMaterial('cluster.local').rootCertPem;
    expect(() =>
      acceptCertificate({ certChain: signed.certChain, rootCert: otherRoot }, key, new Date()),
    ).to.throw(CertificateRejectedError, /does not verify/);
  });

  it('refuses a leaf without exactly one SPIFFE ID', async () => {
    const material = createSelfSignedMaterial('cluster.local');
    const issuer = issuerFromPem(material.signingCertPem, material.signingKeyPem);
    const key = await generateWorkloadKey();
    const leaf = buildLeafCertificate(issuer, {
      spkiDer: parseCsr(createCsr(key)).spkiDer,
      uris: ['spiffe://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/c/sa/d'],
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 60_000),
      serverAuth: true,
      clientAuth: true,
      rsaKey: false,
    });
    expect(() =>
      acceptCertificate({ certChain: [leaf], rootCert: material.rootCertPem }, key, new Date()),
    ).to.throw(/exactly one SPIFFE/);
  });
});
