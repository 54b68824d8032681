/**
 * Workload and endpoint locality from Kubernetes node topology (Istio: the `istio-locality`
 * pod label, else the node's topology.kubernetes.io/region|zone and topology.istio.io/subzone
 * labels), and DestinationRule localityLbSetting.failoverPriority.
 */
import { expect } from 'chai';
import { affectedWorkloads, compileForWorkload, diffSnapshots } from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { WorkloadIdentity } from '../../src/registry/types.js';
import { workloadsFromPods } from '../../src/registry/workloads.js';

const NS = 'shop';
const HOST = `reviews.${NS}.svc.cluster.local`;
const CLUSTER = `outbound|9080||${HOST}`;

const node = (name: string, labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, labels },
});

const pod = (name: string, labels: Record<string, string>, nodeName: string | undefined, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NS, labels },
  spec: { serviceAccountName: 'default', ...(nodeName ? { nodeName } : {}), containers: [{ name: 'app' }] },
  status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
});

const service = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080 }] },
});

const slice = (eps: Array<{ ip: string; pod: string }>) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'reviews-1', namespace: NS, labels: { 'kubernetes.io/service-name': 'reviews' } },
  ports: [{ name: 'http', port: 9080 }],
  endpoints: eps.map((e) => ({
    addresses: [e.ip],
    conditions: { ready: true },
    targetRef: { kind: 'Pod', namespace: NS, name: e.pod },
  })),
});

const EAST_A = { 'topology.kubernetes.io/region': 'us-east', 'topology.kubernetes.io/zone': 'us-east-1a' };
const WEST_B = {
  'topology.kubernetes.io/region': 'us-west',
  'topology.kubernetes.io/zone': 'us-west-1b',
  'topology.istio.io/subzone': 'rack3',
};

function objects(nodeLabels: Record<string, Record<string, string>> = { n1: EAST_A, n2: WEST_B }) {
  return [
    ...Object.entries(nodeLabels).map(([n, l]) => node(n, l)),
    service('reviews'),
    service('productpage'),
    pod('productpage-1', { app: 'productpage' }, 'n1', '10.0.0.1'),
    pod('reviews-1', { app: 'reviews', version: 'v1' }, 'n1', '10.0.1.1'),
    pod('reviews-2', { app: 'reviews', version: 'v2' }, 'n2', '10.0.1.2'),
    // The pod label wins over its node (n2 is us-west).
    pod('reviews-3', { app: 'reviews', version: 'v3', 'istio-locality': 'eu.eu-1c' }, 'n2', '10.0.1.3'),
    slice([
      { ip: '10.0.1.1', pod: 'reviews-1' },
      { ip: '10.0.1.2', pod: 'reviews-2' },
      { ip: '10.0.1.3', pod: 'reviews-3' },
    ]),
  ];
}

const podsOf = (objs: ReturnType<typeof objects>) => objs.filter((o) => o.kind === 'Pod');
const nodesOf = (objs: ReturnType<typeof objects>) => objs.filter((o) => o.kind === 'Node');

function productpage(objs = objects()): WorkloadIdentity {
  const w = workloadsFromPods(podsOf(objs), nodesOf(objs)).find((x) => x.labels.app === 'productpage');
  if (!w) throw new Error('no productpage workload');
  return w;
}

describe('registry: locality from node topology labels', () => {
  it("gives endpoints their node's locality, the istio-locality pod label winning", () => {
    const snap = buildSnapshot(objects());
    const eps = snap.endpoints.get(`${NS}/${HOST}`)!;
    expect(eps.map((e) => [e.address, e.locality])).to.deep.equal([
      ['10.0.1.1', { region: 'us-east', zone: 'us-east-1a' }],
      ['10.0.1.2', { region: 'us-west', zone: 'us-west-1b', subzone: 'rack3' }],
      ['10.0.1.3', { region: 'eu', zone: 'eu-1c' }],
    ]);
  });

  it('gives workloads their node locality, the pod label winning, none without a node', () => {
    const objs = objects();
    const ws = workloadsFromPods(podsOf(objs), nodesOf(objs));
    const loc = (app: string, version?: string) =>
      ws.find((w) => w.labels.app === app && (!version || w.labels.version === version))?.locality;
    expect(loc('productpage')).to.deep.equal({ region: 'us-east', zone: 'us-east-1a' });
    expect(loc('reviews', 'v2')).to.deep.equal({ region: 'us-west', zone: 'us-west-1b', subzone: 'rack3' });
    expect(loc('reviews', 'v3')).to.deep.equal({ region: 'eu', zone: 'eu-1c' });
    // The directory source has no Nodes: pod label only.
    expect(workloadsFromPods(podsOf(objs)).find((w) => w.labels.app === 'productpage')?.locality).to.equal(
      undefined,
    );
  });

  it('reads the deprecated failure-domain.beta.kubernetes.io labels when the new ones are absent', () => {
    const objs = objects({
      n1: {
        'failure-domain.beta.kubernetes.io/region': 'old-region',
        'failure-domain.beta.kubernetes.io/zone': 'old-zone',
      },
      n2: WEST_B,
    });
    expect(productpage(objs).locality).to.deep.equal({ region: 'old-region', zone: 'old-zone' });
  });

  it('leaves a class without locality when its pods run in different localities', () => {
    const objs = [...objects(), pod('productpage-2', { app: 'productpage' }, 'n2', '10.0.0.2')] as ReturnType<
      typeof objects
    >;
    const w = workloadsFromPods(podsOf(objs), nodesOf(objs)).filter((x) => x.labels.app === 'productpage');
    expect(w).to.have.length(1);
    expect(w[0]!.locality).to.equal(undefined);
  });
});

describe('compiler: locality from node topology labels', () => {
  it("puts the node's locality in node.locality and in the endpoints of the tables", () => {
    const snap = buildSnapshot(objects());
    const r = compileForWorkload(snap, productpage());
    expect(r.tables.node?.locality).to.deep.equal({ region: 'us-east', zone: 'us-east-1a' });
    expect(r.endpoints.clusters[CLUSTER]!.map((e) => [e.address, e.locality])).to.deep.equal([
      ['10.0.1.1', { region: 'us-east', zone: 'us-east-1a' }],
      ['10.0.1.2', { region: 'us-west', zone: 'us-west-1b', subzone: 'rack3' }],
      ['10.0.1.3', { region: 'eu', zone: 'eu-1c' }],
    ]);
  });

  it('keeps the istio-locality label of the workload over its node', () => {
    const objs = objects();
    const w = { ...productpage(objs), labels: { app: 'productpage', 'istio-locality': 'ap.ap-2' } };
    const r = compileForWorkload(buildSnapshot(objs), w);
    expect(r.tables.node?.locality).to.deep.equal({ region: 'ap', zone: 'ap-2' });
  });

  it("a node label change re-publishes the endpoints of the node's pods to the workloads that see them", () => {
    const before = buildSnapshot(objects());
    const after = buildSnapshot(
      objects({ n1: EAST_A, n2: { 'topology.kubernetes.io/region': 'us-central' } }),
    );
    const diff = diffSnapshots(before, after);
    expect([...diff.endpoints]).to.deep.equal([HOST]);
    const w = productpage();
    const affected = affectedWorkloads(before, after, [w], diff);
    expect(affected.endpoints.map((x) => x.name)).to.deep.equal([w.name]);
    expect(compileForWorkload(after, w).endpoints.clusters[CLUSTER]![1]!.locality).to.deep.equal({
      region: 'us-central',
    });
  });
});

describe('compiler: localityLbSetting.failoverPriority', () => {
  const dr = (failoverPriority: string[], failover?: Array<{ from: string; to: string }>) => ({
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: NS },
    spec: {
      host: 'reviews',
      trafficPolicy: {
        outlierDetection: { consecutive5xxErrors: 1 },
        loadBalancer: { localityLbSetting: { failoverPriority, ...(failover ? { failover } : {}) } },
      },
    },
  });

  it("fills each bare key with the proxy's own value (topology keys from its locality) without a warning", () => {
    const objs = [
      ...objects(),
      dr(['topology.istio.io/network', 'topology.kubernetes.io/region', 'team=blue', 'version']),
    ];
    const w = { ...productpage(), labels: { app: 'productpage', 'topology.istio.io/network': 'net1' } };
    const r = compileForWorkload(buildSnapshot(objs), w);
    const cluster = r.tables.clusters.find((c) => c.name === CLUSTER)!;
    expect(cluster.localityLb).to.deep.equal({
      failoverPriority: [
        { label: 'topology.istio.io/network', value: 'net1' },
        { label: 'topology.kubernetes.io/region', value: 'us-east' },
        { label: 'team', value: 'blue' },
        { label: 'version', value: '' },
      ],
    });
    expect(r.warnings.map((x) => x.message).join('\n')).not.to.include('failoverPriority');
  });

  it('emits the named labels on endpoints (region from the endpoint locality), nothing else extra', () => {
    const objs = [...objects(), dr(['topology.kubernetes.io/region', 'version'])];
    const r = compileForWorkload(buildSnapshot(objs), productpage());
    expect(r.endpoints.clusters[CLUSTER]!.map((e) => e.labels)).to.deep.equal([
      { 'topology.kubernetes.io/region': 'us-east', version: 'v1' },
      { 'topology.kubernetes.io/region': 'us-west', version: 'v2' },
      { 'topology.kubernetes.io/region': 'eu', version: 'v3' },
    ]);
  });

  it('keeps failover next to failoverPriority (Istio applies both)', () => {
    const objs = [...objects(), dr(['version'], [{ from: 'us-east', to: 'eu' }])];
    const cluster = compileForWorkload(buildSnapshot(objs), productpage()).tables.clusters.find(
      (c) => c.name === CLUSTER,
    )!;
    expect(cluster.localityLb).to.deep.equal({
      failover: [{ from: 'us-east', to: 'eu' }],
      failoverPriority: [{ label: 'version', value: '' }],
    });
  });
});
