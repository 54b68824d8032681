/**
 * Locality from node topology on a real kube-apiserver: Node objects created through the API
 * (the envtest has no kubelet), pods bound to them by spec.nodeName, the reconciler
 * (KubernetesSource with its Node watch -> compiler -> Publisher) publishes endpoint tables
 * whose endpoints carry their node's locality, and the workload's node.locality; a node label
 * change re-publishes them.
 */
import { expect } from 'chai';
import { endpointSliceVersion } from '../../src/config-source/kubernetes-discovery.js';
import {
  KubeApiError,
  type KubeObject,
  type KubeRest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { type RunningReconciler, startReconciler } from '../../src/controller/reconcile.js';
import { podConfig } from '../../src/publish/inspect.js';
import type { Locality, ProxyTables } from '../../src/tables/index.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { endpointSlice, pod, prepareCluster, service, upsert, waitFor } from './helpers.js';

const NS = 'isthmus-locality';
const ROOT = 'istio-system';
const EAST = 'isthmus-locality-east';
const WEST = 'isthmus-locality-west';
const CLUSTER = `outbound|9080||reviews.${NS}.svc.cluster.local`;

async function putNode(rest: KubeRest, name: string, labels: Record<string, string>): Promise<void> {
  const body: KubeObject = { apiVersion: 'v1', kind: 'Node', metadata: { name, labels } };
  try {
    await rest.create('/api/v1/nodes', body);
  } catch (err) {
    if (!(err instanceof KubeApiError) || err.code !== 409) throw err;
    const cur = await rest.get<KubeObject>(`/api/v1/nodes/${name}`);
    await rest.replace(`/api/v1/nodes/${name}`, {
      ...cur,
      metadata: { ...cur.metadata, labels },
    });
  }
}

const onNode = (o: KubeObject, nodeName: string): KubeObject => ({
  ...o,
  spec: { ...(o.spec as Record<string, unknown>), nodeName },
});

describe('locality from Node topology labels on the real apiserver @integration', function () {
  this.timeout(120_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;
  let reconciler: RunningReconciler | undefined;

  /** Locality of each published endpoint of reviews, by address, and productpage's node.locality. */
  const published = async () => {
    await reconciler!.idle();
    const cfg = await podConfig(admin, NS, 'productpage-1');
    const eps: Record<string, Locality | undefined> = {};
    for (const e of cfg.endpoints.clusters[CLUSTER] ?? []) eps[e.address] = e.locality;
    return { eps, node: (cfg.tables as ProxyTables).node?.locality };
  };

  before(async function () {
    this.timeout(600_000);
    cp = controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    const sliceApi = await endpointSliceVersion(admin);
    for (const ns of [NS, ROOT])
      await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await putNode(admin, EAST, {
      'topology.kubernetes.io/region': 'us-east',
      'topology.kubernetes.io/zone': 'us-east-1a',
    });
    await putNode(admin, WEST, {
      'topology.kubernetes.io/region': 'us-west',
      'topology.kubernetes.io/zone': 'us-west-1b',
      'topology.istio.io/subzone': 'rack3',
    });
    await upsert(admin, service(NS, 'reviews'));
    await upsert(admin, service(NS, 'productpage'));
    await upsert(admin, onNode(pod(NS, 'productpage-1', { app: 'productpage' }), EAST));
    await upsert(admin, onNode(pod(NS, 'reviews-1', { app: 'reviews', version: 'v1' }), EAST));
    await upsert(admin, onNode(pod(NS, 'reviews-2', { app: 'reviews', version: 'v2' }), WEST));
    // The pod label wins over its node.
    await upsert(
      admin,
      onNode(pod(NS, 'reviews-3', { app: 'reviews', version: 'v3', 'istio-locality': 'eu.eu-1c' }), WEST),
    );
    await upsert(
      admin,
      endpointSlice(sliceApi, NS, 'reviews-1', 'reviews', [
        { address: '10.1.0.1', port: 9080, pod: 'reviews-1' },
        { address: '10.1.0.2', port: 9080, pod: 'reviews-2' },
        { address: '10.1.0.3', port: 9080, pod: 'reviews-3' },
      ]),
    );
    reconciler = await startReconciler({
      rest: admin,
      namespace: ROOT,
      rootNamespace: ROOT,
      leaderElection: false,
      status: false,
      backoffMaxMs: 3000,
    });
  });

  after(async () => {
    await reconciler?.stop();
    for (const n of [EAST, WEST]) await admin.delete(`/api/v1/nodes/${n}`).catch(() => undefined);
    await admin.delete(`/api/v1/namespaces/${NS}`).catch(() => undefined);
  });

  it("publishes each endpoint with its node's locality (the istio-locality label winning) and the workload's node.locality", async () => {
    const got = await waitFor('endpoints with localities published', async () => {
      const p = await published().catch(() => undefined);
      return p && Object.keys(p.eps).length === 3 ? p : undefined;
    });
    expect(got.eps).to.deep.equal({
      '10.1.0.1': { region: 'us-east', zone: 'us-east-1a' },
      '10.1.0.2': { region: 'us-west', zone: 'us-west-1b', subzone: 'rack3' },
      '10.1.0.3': { region: 'eu', zone: 'eu-1c' },
    });
    expect(got.node).to.deep.equal({ region: 'us-east', zone: 'us-east-1a' });
  });

  it("re-publishes when a node's topology labels change", async () => {
    await putNode(admin, WEST, { 'topology.kubernetes.io/region': 'us-central' });
    await putNode(admin, EAST, {
      'topology.kubernetes.io/region': 'us-east',
      'topology.kubernetes.io/zone': 'us-east-1d',
    });
    const got = await waitFor('the new localities published', async () => {
      const p = await published();
      return p.eps['10.1.0.2']?.region === 'us-central' && p.node?.zone === 'us-east-1d' ? p : undefined;
    });
    expect(got.eps).to.deep.equal({
      '10.1.0.1': { region: 'us-east', zone: 'us-east-1d' },
      '10.1.0.2': { region: 'us-central' },
      '10.1.0.3': { region: 'eu', zone: 'eu-1c' },
    });
    expect(got.node).to.deep.equal({ region: 'us-east', zone: 'us-east-1d' });
  });
});
