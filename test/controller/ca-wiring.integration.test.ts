/**
 * The `isthmus controller` process's CA wiring on a real apiserver: with `--ca-port` and no
 * `--reconcile`, its root publisher writes istio-ca-root-cert into namespaces created while it
 * runs, under its own Lease by default, and without any Lease under `--no-leader-election`
 * (even while another replica holds that Lease, which would otherwise keep it from writing).
 */
import { X509Certificate } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { splitCertificates } from '../../src/ca/der.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { type ControllerProcess, eventually, startController } from '../integration/controller.js';

const fingerprints = (pem: string) =>
  splitCertificates(pem).map((p) => new X509Certificate(p).fingerprint256);

/** Lease of the root publisher (src/controller/main.ts). */
const ROOT_LEASE = 'isthmus-namespace-controller';

describe('controller CA wiring: root publisher with and without leader election @integration', function () {
  this.timeout(120_000);
  const controlPlane = useSharedControlPlane();
  const id = Date.now().toString(36);
  /** The controller's own namespace (its CA Secret and Leases), apart from other suites'. */
  const caNs = `isthmus-cw-${id}`;
  const created: string[] = [];
  let cp: ControlPlane;
  let core: CoreV1Api;
  let leases: CoordinationV1Api;
  let controller: ControllerProcess | undefined;

  const createNs = async (name: string) => {
    created.push(name);
    await core.createNamespace({ body: { metadata: { name } } });
  };
  const readRoot = (namespace: string) =>
    core
      .readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace })
      .then((cm) => cm.data?.['root-cert.pem'])
      .catch(() => undefined);
  /** The self-signed root the controller created in its namespace (Secret istio-ca-secret). */
  const caRoot = () =>
    eventually('Secret istio-ca-secret', () =>
      core
        .readNamespacedSecret({ name: 'istio-ca-secret', namespace: caNs })
        .then((s) => Buffer.from(s.data?.['ca-cert.pem'] ?? '', 'base64').toString('utf8') || undefined)
        .catch(() => undefined),
    );
  const holder = () =>
    leases
      .readNamespacedLease({ name: ROOT_LEASE, namespace: caNs })
      .then((l) => l.spec?.holderIdentity ?? '')
      .catch(() => undefined);
  const publishedIn = (ns: string) =>
    eventually(`istio-ca-root-cert in ${ns}`, () => readRoot(ns)).catch((err: Error) => {
      throw new Error(`${err.message}; controller log:\n${controller?.logTail()}`);
    });
  const start = (extra: string[]) =>
    // Later flags win: the controller's namespace is ours; --no-register keeps the cluster's
    // webhook configurations pointing where other suites expect them.
    startController(cp, ['--namespace', caNs, '--no-register', ...extra]);

  before(async () => {
    cp = controlPlane();
    core = cp.kubeConfig.makeApiClient(CoreV1Api);
    leases = cp.kubeConfig.makeApiClient(CoordinationV1Api);
    await createNs(caNs);
  });

  afterEach(async () => {
    await controller?.stop();
    controller = undefined;
  });

  after(async () => {
    for (const name of created) await cp.kubectl(['delete', 'namespace', name, '--wait=false']);
  });

  it('with leader election (the default) publishes istio-ca-root-cert into a new namespace as Lease holder', async () => {
    controller = await start([]);
    const root = await caRoot();
    const ns = `cw-le-${id}`;
    await createNs(ns);
    const published = await publishedIn(ns);
    expect(fingerprints(published)).to.deep.equal(fingerprints(root));
    const leader = await eventually(`a holder of Lease ${ROOT_LEASE}`, holder);
    expect(leader).to.be.a('string').and.not.equal('');
  });

  it('with --no-leader-election publishes too, while another replica holds the Lease', async () => {
    // A live Lease of someone else: an electing publisher would wait for it to expire (1 h).
    // (kubectl: the client's Date serialisation is not the MicroTime the apiserver parses.)
    const now = new Date().toISOString().replace(/Z$/, '000Z');
    await leases.deleteNamespacedLease({ name: ROOT_LEASE, namespace: caNs }).catch(() => undefined);
    const lease = JSON.stringify({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: ROOT_LEASE, namespace: caNs },
      spec: { holderIdentity: 'other-replica', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now },
    });
    const applied = await cp.kubectl(['create', '-f', '-'], { input: lease });
    expect(applied.code, applied.stderr).to.equal(0);
    controller = await start(['--no-leader-election']);
    const root = await caRoot();
    const ns = `cw-nole-${id}`;
    await createNs(ns);
    const published = await publishedIn(ns);
    expect(fingerprints(published)).to.deep.equal(fingerprints(root));
    expect(await holder(), 'the Lease is left alone').to.equal('other-replica');
  });
});
