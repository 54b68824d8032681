import { X509Certificate } from 'node:crypto';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { createCsr, generateWorkloadKey } from '../../src/ca/csr.js';
import { splitCertificates } from '../../src/ca/der.js';
import { type RunningMeshCa, startMeshCa } from '../../src/ca/index.js';
import { type KubeRest, restFromKubeConfig } from '../../src/config-source/kubernetes-rest.js';
import { createLogger } from '../../src/util/log.js';
import { useSharedControlPlane } from '../envtest/index.js';
import { makeRoot, pluggedMaterialFixture, postCsr } from './helpers.js';

const quiet = createLogger('root-pub-it');
quiet.silent = true;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const fingerprints = (pem: string) =>
  splitCertificates(pem).map((p) => new X509Certificate(p).fingerprint256);

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('root publisher and cacerts reload against the real apiserver @integration', function () {
  this.timeout(90_000);
  const cp = useSharedControlPlane();
  const id = Date.now().toString(36);
  const label = `isthmus-root-it-${id}`;
  const caNs = `isthmus-rp-${id}`;
  const appNs = `rp-app-${id}`;
  const created: string[] = [];
  let core: CoreV1Api;
  let rest: KubeRest;
  let mesh: RunningMeshCa | undefined;
  let leader = true;

  const readRoot = (namespace: string) =>
    core
      .readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace })
      .then((cm) => cm.data?.['root-cert.pem'])
      .catch(() => undefined);
  const createNs = async (name: string) => {
    created.push(name);
    await core.createNamespace({ body: { metadata: { name, labels: { [label]: 'true' } } } });
  };

  before(async () => {
    core = cp().kubeConfig.makeApiClient(CoreV1Api);
    rest = restFromKubeConfig(cp().kubeConfig, 'root-publisher-it');
    await createNs(caNs);
    await createNs(appNs);
    await core.createNamespacedServiceAccount({ namespace: appNs, body: { metadata: { name: 'ratings' } } });
    mesh = await startMeshCa({
      core,
      authn: cp().kubeConfig.makeApiClient(AuthenticationV1Api),
      rest,
      namespace: caNs,
      port: 0,
      host: '127.0.0.1',
      isLeader: () => leader,
      namespaceLabelSelector: `${label}=true`,
      log: quiet,
    });
  });

  after(async () => {
    await mesh?.close();
    rest?.close();
    for (const name of created) await cp().kubectl(['delete', 'namespace', name, '--wait=false']);
  });

  it('publishes the root into a namespace as soon as it is created, and recreates a deleted ConfigMap', async () => {
    expect(await until('the first pass', () => readRoot(appNs))).to.equal(mesh!.ca.rootCertPem);
    const late = `rp-late-${id}`;
    const started = Date.now();
    await createNs(late);
    const data = await until('istio-ca-root-cert in a new namespace', () => readRoot(late));
    console.log(
      `      istio-ca-root-cert appeared ${Date.now() - started} ms after the namespace was created`,
    );
    expect(data).to.equal(mesh!.ca.rootCertPem);
    const cm = await core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: late });
    expect(cm.metadata?.labels?.['istio.io/config']).to.equal('true');

    const uid = cm.metadata?.uid;
    const deletedAt = Date.now();
    await core.deleteNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: late });
    const again = await until('the deleted ConfigMap to be recreated', () =>
      core
        .readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: late })
        .then((c) => (c.metadata?.uid !== uid ? c : undefined))
        .catch(() => undefined),
    );
    console.log(`      deleted istio-ca-root-cert recreated after ${Date.now() - deletedAt} ms`);
    expect(again.data?.['root-cert.pem']).to.equal(mesh!.ca.rootCertPem);
    expect(mesh!.rootPublisher!.stats.created).to.be.at.least(3);
  });

  it('puts back a root someone edited', async () => {
    await cp().kubectl([
      '-n',
      appNs,
      'patch',
      'configmap',
      'istio-ca-root-cert',
      '-p',
      '{"data":{"root-cert.pem":"edited"}}',
    ]);
    const data = await until('the edited root to be restored', async () => {
      const d = await readRoot(appNs);
      return d === mesh!.ca.rootCertPem ? d : undefined;
    });
    expect(data).to.equal(mesh!.ca.rootCertPem);
  });

  it('writes only while leading: a namespace seen by a non-leader gets the root once it leads', async () => {
    leader = false;
    const ns = `rp-follower-${id}`;
    await createNs(ns);
    // The namespace's ADDED event has been handled (store updated, then the pass skipped).
    await until('the namespace in the watch', async () => (mesh!.rootPublisher!.sees(ns) ? true : undefined));
    await mesh!.rootPublisher!.idle();
    expect(await readRoot(ns)).to.equal(undefined);
    leader = true;
    mesh!.rootPublisher!.kick();
    expect(await until('the root after gaining leadership', () => readRoot(ns))).to.equal(
      mesh!.ca.rootCertPem,
    );
  });

  it('switches to a cacerts created at run time, publishing old + new roots', async () => {
    const selfSignedRoot = mesh!.ca.rootCertPem;
    expect(mesh!.ca.source).to.equal('self-signed');
    const { material, root } = pluggedMaterialFixture();
    await core.createNamespacedSecret({
      namespace: caNs,
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
    await until('the CA to load cacerts', async () => (mesh!.ca.source === 'plugged' ? true : undefined));
    // Trust bundle: the new root first, the replaced self-signed root kept for the transition.
    expect(fingerprints(mesh!.ca.rootCertPem)).to.deep.equal([
      ...fingerprints(root.certPem),
      ...fingerprints(selfSignedRoot),
    ]);
    const token = (
      await core.createNamespacedServiceAccountToken({
        name: 'ratings',
        namespace: appNs,
        body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } },
      })
    ).status!.token;
    // The serving certificate still chains to the old root; the bundle trusts both.
    const res = await postCsr(mesh!.server.port, mesh!.ca.rootCertPem, token, {
      csr: createCsr(await generateWorkloadKey()),
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const chain = (res.body.certChain as string[]).map((p) => new X509Certificate(p));
    const rootCert = new X509Certificate(root.certPem);
    expect(chain[0]!.verify(chain[1]!.publicKey)).to.equal(true);
    expect(chain[1]!.verify(rootCert.publicKey)).to.equal(true);
    expect(res.body.rootCert).to.equal(mesh!.ca.rootCertPem);
    // Republished to every namespace.
    for (const ns of [appNs, caNs]) {
      const data = await until(`the combined root in ${ns}`, async () => {
        const d = await readRoot(ns);
        return d === mesh!.ca.rootCertPem ? d : undefined;
      });
      expect(fingerprints(data)).to.have.length(2);
    }
  });

  it('refuses a broken cacerts with an error naming the problem and keeps signing with the old one', async () => {
    const signing = mesh!.ca.signingCertPem;
    const { material } = pluggedMaterialFixture();
    const wrongKey = makeRoot('unrelated').keyPem;
    await cp().kubectl([
      '-n',
      caNs,
      'patch',
      'secret',
      'cacerts',
      '-p',
      JSON.stringify({ data: { 'ca-key.pem': b64(wrongKey) } }),
    ]);
    await until('the refusal', async () => (mesh!.reloader!.stats.refused > 0 ? true : undefined));
    expect(mesh!.reloader!.stats.lastError).to.match(
      /Secret isthmus-rp-\w+\/cacerts .*refused: ca-cert\.pem \/ ca-key\.pem: the CA key does not match the CA certificate; the CA keeps signing/,
    );
    expect(mesh!.ca.signingCertPem).to.equal(signing);
    expect(mesh!.ca.signingCertPem).to.equal(new X509Certificate(material.signingCertPem).toString());

    // A missing key is named too.
    await cp().kubectl([
      '-n',
      caNs,
      'patch',
      'secret',
      'cacerts',
      '--type=json',
      '-p',
      '[{"op":"remove","path":"/data/root-cert.pem"}]',
    ]);
    await until('the second refusal', async () => (mesh!.reloader!.stats.refused > 1 ? true : undefined));
    expect(mesh!.reloader!.stats.lastError).to.match(/lacks root-cert\.pem/);
    expect(mesh!.ca.signingCertPem).to.equal(signing);
  });
});
