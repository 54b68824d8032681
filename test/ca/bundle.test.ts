import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { MeshCa } from '../../src/ca/authority.js';
import { CaBundleError, createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { pluggedMaterial, selfSignedMaterial, selfSignedSecret } from '../../src/ca/ca-secret.js';
import { makeIntermediate, makeRoot, pluggedMaterialFixture } from './helpers.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('ca/bundle', () => {
  it('a self-signed root signs as itself, with no intermediates; O is the trust domain', () => {
    const m = createSelfSignedMaterial('example.org');
    const bundle = loadCaBundle(m, 'self-signed');
    expect(bundle.intermediatesPem).to.deep.equal([]);
    expect(bundle.rootCertPem).to.equal(new X509Certificate(m.rootCertPem).toString());
    const root = new X509Certificate(bundle.rootCertPem);
    expect(root.ca).to.equal(true);
    expect(root.subject).to.include('O=example.org');
    expect(new Date(root.validTo).getTime() - Date.now()).to.be.greaterThan(9 * 365 * 86_400_000);
  });

  it('a plugged intermediate signs, and the chain excludes the root', () => {
    const { material, intermediate } = pluggedMaterialFixture();
    const bundle = loadCaBundle(material, 'plugged');
    expect(bundle.intermediatesPem).to.have.length(1);
    expect(new X509Certificate(bundle.intermediatesPem[0]!).fingerprint256).to.equal(
      new X509Certificate(intermediate.certPem).fingerprint256,
    );
  });

  it('accepts an empty cert-chain.pem for a direct intermediate', () => {
    const { material } = pluggedMaterialFixture();
    expect(loadCaBundle({ ...material, certChainPem: '' }, 'plugged').intermediatesPem).to.have.length(1);
  });

  it('follows a two-level chain and rejects an out-of-order one', () => {
    const root = makeRoot('r');
    const mid = makeIntermediate(root, 'mid');
    const issuing = makeIntermediate(mid, 'issuing');
    const base = {
      signingCertPem: issuing.certPem,
      signingKeyPem: issuing.keyPem,
      rootCertPem: root.certPem,
    };
    const ok = loadCaBundle(
      { ...base, certChainPem: issuing.certPem + mid.certPem + root.certPem },
      'plugged',
    );
    expect(ok.intermediatesPem).to.have.length(2);
    expect(() => loadCaBundle({ ...base, certChainPem: '' }, 'plugged')).to.throw(
      CaBundleError,
      /not signed by any certificate in root-cert.pem/,
    );
  });

  it('rejects a key that does not match, a non-CA signing cert, and a foreign root', () => {
    const { material } = pluggedMaterialFixture();
    const other = makeRoot('other');
    expect(() => loadCaBundle({ ...material, signingKeyPem: other.keyPem }, 'plugged')).to.throw(
      CaBundleError,
      /does not match/,
    );
    expect(() => loadCaBundle({ ...material, rootCertPem: other.certPem }, 'plugged')).to.throw(
      CaBundleError,
      /not signed by any certificate/,
    );
    expect(() => loadCaBundle({ ...material, rootCertPem: '' }, 'plugged')).to.throw(
      CaBundleError,
      /no certificate/,
    );
    const ca = new MeshCa(loadCaBundle(material, 'plugged'), { trustDomain: 'cluster.local' });
    const leaf = ca.issueServingCert(['ca.example'], 3600);
    expect(() =>
      loadCaBundle({ ...material, signingCertPem: leaf.certChainPem, signingKeyPem: leaf.keyPem }, 'plugged'),
    ).to.throw(CaBundleError, /is not a CA/);
  });

  it('reads cacerts in istiod and cert-manager layouts, naming missing keys', () => {
    const { material } = pluggedMaterialFixture();
    const istiod = pluggedMaterial({
      'ca-cert.pem': b64(material.signingCertPem),
      'ca-key.pem': b64(material.signingKeyPem),
      'root-cert.pem': b64(material.rootCertPem),
      'cert-chain.pem': b64(material.certChainPem!),
    });
    expect(loadCaBundle(istiod, 'plugged').source).to.equal('plugged');
    const certManager = pluggedMaterial({
      'tls.crt': b64(material.signingCertPem),
      'tls.key': b64(material.signingKeyPem),
      'ca.crt': b64(material.rootCertPem),
    });
    expect(loadCaBundle(certManager, 'plugged').intermediatesPem).to.have.length(1);
    expect(() => pluggedMaterial({ 'ca-cert.pem': b64('x') })).to.throw(/ca-key.pem, root-cert.pem/);
  });

  it("stores the self-signed root in istiod's istio-ca-secret layout and reads it back", () => {
    const m = createSelfSignedMaterial('cluster.local');
    const secret = selfSignedSecret(m);
    expect(secret.type).to.equal('istio.io/ca-root');
    expect(Object.keys(secret.data!).sort()).to.deep.equal([
      'ca-cert.pem',
      'ca-key.pem',
      'cert-chain.pem',
      'key.pem',
      'root-cert.pem',
    ]);
    const back = selfSignedMaterial(secret.data!);
    expect(back.signingCertPem).to.equal(m.signingCertPem);
    expect(back.rootCertPem).to.equal(m.signingCertPem);
  });
});
