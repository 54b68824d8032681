import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { uriSans } from '../../src/agent/accept.js';
import { CertificateManager, type WorkloadCertificate } from '../../src/agent/index.js';
import { loadOrCreateCaBundle } from '../../src/ca/ca-secret.js';
import { createCsr, generateWorkloadKey } from '../../src/ca/csr.js';
import { type RunningMeshCa, startMeshCa, startRootSync } from '../../src/ca/index.js';
import { createLogger } from '../../src/util/log.js';
import { useSharedControlPlane } from '../envtest/index.js';
import { fakeJwt, pluggedMaterialFixture, postCsr } from './helpers.js';

const quiet = createLogger('ca-it');
quiet.silent = true;
const b64 = (s: string) => Buffer.from(s).toString('base64');

function verifiesTo(chain: string[], rootPem: string): boolean {
  const certs = chain.map((p) => new X509Certificate(p));
  for (let i = 0; i + 1 < certs.length; i++) if (!certs[i]!.verify(certs[i + 1]!.publicKey)) return false;
  const root = new X509Certificate(rootPem);
  const top = certs[certs.length - 1]!;
  return top.checkIssued(root) && top.verify(root.publicKey);
}

describe('mesh CA and agent against the real apiserver @integration', function () {
  this.timeout(60_000);
  const cp = useSharedControlPlane();
  const id = Date.now().toString(36);
  const caNs = `isthmus-ca-${id}`;
  const appNs = `ca-app-${id}`;
  const otherNs = `ca-other-${id}`;
  const plugNs = `isthmus-plug-${id}`;
  const raceNs = `isthmus-race-${id}`;
  const spiffe = `spiffe://cluster.local/ns/${appNs}/sa/reviews`;
  let core: CoreV1Api;
  let authn: AuthenticationV1Api;
  let mesh: RunningMeshCa | undefined;
  let token: string;
  let dir: string;
  let tokenPath: string;
  const managers: CertificateManager[] = [];

  const mint = async (audiences: string[], sa = 'reviews', namespace = appNs) => {
    const tr = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace,
      body: { spec: { audiences, expirationSeconds: 3600 } },
    });
    return tr.status!.token;
  };
  const start = (port = 0, namespace = caNs) =>
    startMeshCa({ core, authn, namespace, port, host: '127.0.0.1', log: quiet });

  before(async () => {
    core = cp().kubeConfig.makeApiClient(CoreV1Api);
    authn = cp().kubeConfig.makeApiClient(AuthenticationV1Api);
    for (const name of [caNs, appNs, otherNs, plugNs, raceNs])
      await core.createNamespace({ body: { metadata: { name } } });
    await core.createNamespacedServiceAccount({ namespace: appNs, body: { metadata: { name: 'reviews' } } });
    token = await mint(['istio-ca']);
    dir = mkdtempSync(join(tmpdir(), 'isthmus-ca-it-'));
    tokenPath = join(dir, 'istio-token');
    writeFileSync(tokenPath, token);
  });

  after(async () => {
    for (const m of managers) m.stop();
    await mesh?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const name of [caNs, appNs, otherNs, plugNs, raceNs])
      await cp().kubectl(['delete', 'namespace', name, '--wait=false']);
  });

  it('creates the self-signed root once: replicas racing on create agree on one root', async () => {
    const bundles = await Promise.all(
      [1, 2, 3].map(() => loadOrCreateCaBundle(core, raceNs, { trustDomain: 'cluster.local' })),
    );
    expect(new Set(bundles.map((b) => b.rootCertPem)).size).to.equal(1);
    const secret = await core.readNamespacedSecret({ name: 'istio-ca-secret', namespace: raceNs });
    expect(secret.type).to.equal('istio.io/ca-root');
    const stored = new X509Certificate(Buffer.from(secret.data!['ca-cert.pem']!, 'base64').toString());
    expect(stored.fingerprint256).to.equal(new X509Certificate(bundles[0]!.rootCertPem).fingerprint256);
  });

  it('issues the agent a certificate naming exactly its service account, verifying against the root', async () => {
    mesh = await start();
    const m = new CertificateManager({
      caAddress: `127.0.0.1:${mesh.server.port}`,
      caRootPem: mesh.ca.rootCertPem,
      tokenPath,
      log: quiet,
    });
    managers.push(m);
    expect(m.ready).to.equal(false);
    m.start();
    const cert = await m.whenReady();
    expect(m.ready).to.equal(true);
    expect(cert.spiffeId).to.equal(spiffe);
    const leaf = new X509Certificate(cert.certChainPem);
    expect(uriSans(leaf)).to.deep.equal([spiffe]);
    expect(leaf.subjectAltName).to.equal(`URI:${spiffe}`);
    expect(verifiesTo([cert.certChainPem], mesh.ca.rootCertPem)).to.equal(true);
    m.stop();
  });

  it('refuses a token minted for another audience with 401', async () => {
    const wrong = await mint(['someone-else']);
    const res = await postCsr(mesh!.server.port, mesh!.ca.rootCertPem, wrong, {
      csr: createCsr(await generateWorkloadKey()),
    });
    expect(res.status).to.equal(401);
    expect((res.body.error as { code: string }).code).to.equal('CA_TOKEN_AUDIENCE');
  });

  it('refuses with 401 a forged token the apiserver does not authenticate', async () => {
    const forged = fakeJwt({
      aud: ['istio-ca'],
      sub: `system:serviceaccount:${appNs}:reviews`,
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    const res = await postCsr(mesh!.server.port, mesh!.ca.rootCertPem, forged, {
      csr: createCsr(await generateWorkloadKey()),
    });
    expect(res.status).to.equal(401);
    expect((res.body.error as { code: string }).code).to.equal('CA_TOKEN_REJECTED');
  });

  it("signs only the token's identity when the CSR asks for another, and reviews a token once", async () => {
    const reviewsBefore = mesh!.authenticator.stats.reviews;
    const fresh = await mint(['istio-ca']);
    for (let i = 0; i < 3; i++) {
      const res = await postCsr(mesh!.server.port, mesh!.ca.rootCertPem, fresh, {
        csr: createCsr(await generateWorkloadKey(), {
          uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'],
          dnsNames: ['kubernetes.default.svc'],
        }),
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const leaf = new X509Certificate((res.body.certChain as string[])[0]!);
      expect(leaf.subjectAltName).to.equal(`URI:${spiffe}`);
    }
    expect(mesh!.authenticator.stats.reviews - reviewsBefore).to.equal(1);
  });

  it('publishes istio-ca-root-cert ConfigMaps into namespaces (idempotently)', async () => {
    const first = await mesh!.publishRoot([appNs, otherNs, `absent-${id}`]);
    expect(first.created.sort()).to.deep.equal([appNs, otherNs].sort());
    expect(first.failed.map((f) => f.namespace)).to.deep.equal([`absent-${id}`]);
    for (const ns of [appNs, otherNs]) {
      const cm = await core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: ns });
      expect(cm.data?.['root-cert.pem']).to.equal(mesh!.ca.rootCertPem);
      expect(cm.metadata?.labels?.['istio.io/config']).to.equal('true');
    }
    const again = await mesh!.publishRoot([appNs, otherNs]);
    expect(again.unchanged.sort()).to.deep.equal([appNs, otherNs].sort());
    // Someone edits it: the next pass puts the root back.
    await cp().kubectl([
      '-n',
      appNs,
      'patch',
      'configmap',
      'istio-ca-root-cert',
      '-p',
      '{"data":{"root-cert.pem":"x"}}',
    ]);
    expect((await mesh!.publishRoot([appNs])).updated).to.deep.equal([appNs]);
  });

  it('root sync publishes into every namespace, including ones created later', async () => {
    const late = `ca-late-${id}`;
    const sync = startRootSync(core, () => mesh!.ca.rootCertPem, { intervalMs: 300 });
    try {
      await core.createNamespace({ body: { metadata: { name: late } } });
      const deadline = Date.now() + 10_000;
      let data: string | undefined;
      while (Date.now() < deadline && !data) {
        data = await core
          .readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: late })
          .then((cm) => cm.data?.['root-cert.pem'])
          .catch(() => undefined);
        if (!data) await new Promise((r) => setTimeout(r, 200));
      }
      expect(data).to.equal(mesh!.ca.rootCertPem);
    } finally {
      sync.stop();
      await cp().kubectl(['delete', 'namespace', late, '--wait=false']);
    }
  });

  it('keeps the same root across a CA restart (istio-ca-secret reused)', async () => {
    const root = mesh!.ca.rootCertPem;
    const port = mesh!.server.port;
    await mesh!.close();
    mesh = await start(port);
    expect(mesh.ca.rootCertPem).to.equal(root);
    expect(mesh.ca.source).to.equal('self-signed');
  });

  it('signs with the operator plug-in cacerts when present, returning the full chain', async () => {
    const { material, root } = pluggedMaterialFixture();
    await core.createNamespacedSecret({
      namespace: plugNs,
      body: {
        metadata: { name: 'cacerts' },
        data: {
          'ca-cert.pem': b64(material.signingCertPem),
          'ca-key.pem': b64(material.signingKeyPem),
          'root-cert.pem': b64(material.rootCertPem),
          'cert-chain.pem': b64(material.certChainPem!),
        },
      },
    });
    const plugged = await start(0, plugNs);
    try {
      expect(plugged.ca.source).to.equal('plugged');
      const res = await postCsr(plugged.server.port, root.certPem, token, {
        csr: createCsr(await generateWorkloadKey()),
      });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      const chain = res.body.certChain as string[];
      expect(chain).to.have.length(2);
      expect(verifiesTo(chain, root.certPem)).to.equal(true);
      expect(new X509Certificate(res.body.rootCert as string).fingerprint256).to.equal(
        new X509Certificate(root.certPem).fingerprint256,
      );
      // No self-signed root was created next to the plug-in.
      const list = await core.listNamespacedSecret({ namespace: plugNs });
      expect(list.items.map((s) => s.metadata?.name)).to.not.include('istio-ca-secret');
    } finally {
      await plugged.close();
    }
  });

  it('rotates 4-second certificates before expiry, serves on while the CA is stopped, then recovers', async () => {
    const port = mesh!.server.port;
    const m = new CertificateManager({
      caAddress: `127.0.0.1:${port}`,
      caRootPem: mesh!.ca.rootCertPem,
      tokenPath,
      validitySeconds: 4,
      retryInitialMs: 200,
      retryMaxMs: 800,
      log: quiet,
    });
    managers.push(m);
    const next = () =>
      new Promise<WorkloadCertificate>((resolve) => m.once('certificate', (c) => resolve(c)));
    m.start();
    const first = await m.whenReady();
    const second = await next();
    expect(Date.now()).to.be.below(first.notAfter.getTime());
    expect(second.notAfter.getTime()).to.be.above(first.notAfter.getTime());
    expect(second.spiffeId).to.equal(spiffe);

    await mesh!.close();
    const failures: Error[] = [];
    m.on('fetch-failed', (e) => failures.push(e));
    await new Promise((r) => setTimeout(r, Math.max(0, second.notAfter.getTime() - Date.now() + 500)));
    expect(failures.length).to.be.at.least(1);
    expect(failures[0]!.message).to.match(/cannot reach the CA/);
    expect(m.ready).to.equal(true);
    expect(m.current()).to.equal(second);

    mesh = await start(port);
    const third = await next();
    expect(third.notAfter.getTime()).to.be.above(second.notAfter.getTime());
    expect(verifiesTo([third.certChainPem], mesh.ca.rootCertPem)).to.equal(true);
    m.stop();
  });
});
