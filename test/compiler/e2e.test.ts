/**
 * End to end, no mocks: YAML-shaped objects -> snapshot -> compileForWorkload -> a real
 * SidecarProxy on loopback with real upstream HTTP servers as the reviews endpoints. Checks
 * that the compiled 80/20 split and the `end-user: jason` header match hold on the wire.
 */
import { expect } from 'chai';
import { compileForWorkload } from '../../src/compiler/index.js';
import type { SidecarProxy } from '../../src/proxy/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import { workloadsFromPods } from '../../src/registry/workloads.js';
import { outboundPort, send, startProxy, startUpstream, type Upstream } from '../proxy/helpers.js';

const NS = 'shop';

function pod(name: string, labels: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: { serviceAccountName: labels.app, containers: [{ name: 'app', image: 'x' }] },
    status: { podIP: '127.0.0.1' },
  };
}

/** One EndpointSlice per version: each upstream listens on its own loopback port. */
function slice(version: string, port: number) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `reviews-${version}`,
      namespace: NS,
      labels: { 'kubernetes.io/service-name': 'reviews' },
    },
    ports: [{ name: 'http', port }],
    endpoints: [
      {
        addresses: ['127.0.0.1'],
        conditions: { ready: true },
        targetRef: { kind: 'Pod', namespace: NS, name: `reviews-${version}` },
      },
    ],
  };
}

describe('compiler end to end through a real proxy', () => {
  const upstreams: Record<string, Upstream> = {};
  let proxy: SidecarProxy;
  let port: number;

  before(async () => {
    for (const v of ['v1', 'v2', 'v3']) upstreams[v] = await startUpstream(v);
    const objects = [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'reviews', namespace: NS },
        spec: {
          clusterIP: '10.96.0.11',
          selector: { app: 'reviews' },
          ports: [{ name: 'http', port: 9080 }],
        },
      },
      pod('productpage-v1', { app: 'productpage', version: 'v1' }),
      ...['v1', 'v2', 'v3'].map((v) => pod(`reviews-${v}`, { app: 'reviews', version: v })),
      ...['v1', 'v2', 'v3'].map((v) => slice(v, upstreams[v]!.port)),
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews', namespace: NS },
        spec: {
          hosts: ['reviews'],
          http: [
            {
              match: [{ headers: { 'end-user': { exact: 'jason' } } }],
              route: [{ destination: { host: 'reviews', subset: 'v2' } }],
            },
            {
              route: [
                { destination: { host: 'reviews', subset: 'v1' }, weight: 80 },
                { destination: { host: 'reviews', subset: 'v3' }, weight: 20 },
              ],
            },
          ],
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'reviews', namespace: NS },
        spec: {
          host: 'reviews',
          subsets: ['v1', 'v2', 'v3'].map((v) => ({ name: v, labels: { version: v } })),
        },
      },
    ];
    const snap = buildSnapshot(objects);
    const productpage = workloadsFromPods(objects).find((w) => w.labels.app === 'productpage')!;
    const compiled = compileForWorkload(snap, productpage);
    expect(compiled.warnings).to.deep.equal([]);
    proxy = await startProxy(compiled.tables);
    const eps = proxy.applyEndpoints(compiled.endpoints);
    expect(eps.ok, JSON.stringify(eps)).to.equal(true);
    port = outboundPort(proxy);
  });

  after(async () => {
    await proxy?.stop(100);
    for (const u of Object.values(upstreams)) await u.close();
  });

  it('splits traffic 80/20 between v1 and v3 (within 2 points over 5000 requests)', async function () {
    this.timeout(60_000);
    // 5000 requests: the binomial standard deviation is 0.57 points, so 2 points is 3.5 sigma.
    const total = 5000;
    const counts: Record<string, number> = {};
    let next = 0;
    const worker = async () => {
      while (next < total) {
        next++;
        const r = await send(port, { host: 'reviews:9080', path: '/reviews/1' });
        expect(r.status).to.equal(200);
        counts[r.body] = (counts[r.body] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(counts.v2 ?? 0).to.equal(0);
    const v1 = (counts.v1 ?? 0) / total;
    const v3 = (counts.v3 ?? 0) / total;
    expect(v1 + v3).to.equal(1);
    expect(Math.abs(v1 - 0.8), `v1 share ${v1}`).to.be.at.most(0.02);
  });

  it('sends end-user: jason to v2, every time, by any host form', async () => {
    // (A bare `reviews` Host means port 80, which reviews does not serve.)
    for (const host of ['reviews:9080', 'reviews.shop:9080', 'reviews.shop.svc:9080', '10.96.0.11:9080']) {
      for (let i = 0; i < 20; i++) {
        const r = await send(port, { host, path: '/reviews/1', headers: { 'end-user': 'jason' } });
        expect(r.body, host).to.equal('v2');
      }
    }
    const other = await send(port, { host: 'reviews:9080', headers: { 'end-user': 'json' } });
    expect(['v1', 'v3']).to.include(other.body);
  });

  it('sends unknown hosts on a known port to PassthroughCluster (ALLOW_ANY), not to a service', async () => {
    // ALLOW_ANY: unknown hosts on 9080 go to PassthroughCluster (no endpoints in explicit mode).
    const r = await send(port, { host: 'unknown.example.com:9080' });
    expect(r.status).to.be.oneOf([502, 503]);
  });
});
