import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import type { Downstream } from '../../src/proxy/http/downstream.js';
import type { SidecarProxy } from '../../src/proxy/index.js';
import { setCaptured } from '../../src/proxy/sidecar/captured.js';
import { workloadFromEnv } from '../../src/proxy/sidecar/workload.js';
import { ClusterState } from '../../src/proxy/upstream/cluster.js';
import {
  type Cluster,
  ENDPOINTS_API_VERSION,
  type Endpoint,
  type ProxyTables,
} from '../../src/tables/index.js';
import { C1, ep, outboundPort, send, startProxy, startUpstream, tables, type Upstream } from './helpers.js';

describe('proxy load balancing', () => {
  let ups: Upstream[];
  let proxy: SidecarProxy;

  /** `/hold` requests wait here until the test releases them (no timer decides the overlap). */
  const holds: Array<() => void> = [];
  let held: (() => void) | null = null;

  before(async () => {
    const hold =
      (name: string) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        if (req.url !== '/hold') {
          res.end(name);
          return;
        }
        holds.push(() => res.end(name));
        held?.();
      };
    ups = await Promise.all(['a', 'b', 'c'].map((n) => startUpstream(n, hold(n))));
  });
  after(async () => {
    await Promise.all(ups.map((u) => u.close()));
  });
  afterEach(async () => {
    await proxy.stop(100);
  });

  async function start(lbPolicy: Cluster['lbPolicy'], hosts = ups): Promise<number> {
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
      [C1]: hosts.map((u) => ep(u)),
    });
    t.clusters[0]!.lbPolicy = lbPolicy;
    proxy = await startProxy(t);
    return outboundPort(proxy);
  }

  async function tally(port: number, n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const body = (await send(port)).body;
      counts[body] = (counts[body] ?? 0) + 1;
    }
    return counts;
  }

  it('ROUND_ROBIN spreads requests evenly', async () => {
    const port = await start('ROUND_ROBIN');
    expect(await tally(port, 30)).to.deep.equal({ a: 10, b: 10, c: 10 });
  });

  it('RANDOM reaches every host', async () => {
    const port = await start('RANDOM');
    const counts = await tally(port, 150);
    for (const n of ['a', 'b', 'c']) expect(counts[n]).to.be.within(20, 80);
  });

  it('LEAST_REQUEST avoids the host with a request in flight', async () => {
    const port = await start('LEAST_REQUEST', ups.slice(0, 2));
    const arrived = new Promise<void>((r) => {
      held = r;
    });
    const holding = send(port, { path: '/hold' });
    await arrived; // the proxy counts it active on one host until it is released
    const counts = await tally(port, 10);
    for (const release of holds.splice(0)) release();
    const busy = (await holding).body;
    expect(counts[busy] ?? 0).to.equal(0);
    expect(counts[busy === 'a' ? 'b' : 'a']).to.equal(10);
  });

  it('excludes unhealthy and draining endpoints', async () => {
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
      [C1]: [
        ep(ups[0]!, { health: 'UNHEALTHY' }),
        ep(ups[1]!, { health: 'DRAINING' }),
        ep(ups[2]!, { health: 'UNKNOWN' }),
      ],
    });
    proxy = await startProxy(t);
    expect(await tally(outboundPort(proxy), 6)).to.deep.equal({ c: 6 });
  });
});

describe('proxy weighted, consistent-hash, locality and passthrough balancing', () => {
  let ups: Upstream[];
  let proxy: SidecarProxy | undefined;

  before(async () => {
    ups = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startUpstream(n)));
  });
  after(async () => {
    await Promise.all(ups.map((u) => u.close()));
  });
  afterEach(async () => {
    await proxy?.stop(100);
    proxy = undefined;
  });

  async function start(
    cluster: Partial<Cluster>,
    eps: Endpoint[] = ups.map((u) => ep(u)),
    extra: Partial<ProxyTables> = {},
  ): Promise<number> {
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: eps }, extra);
    Object.assign(t.clusters[0]!, cluster);
    proxy = await startProxy(t);
    return outboundPort(proxy);
  }

  async function tally(
    port: number,
    n: number,
    opts: Parameters<typeof send>[1] = {},
  ): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const body = (await send(port, opts)).body;
      counts[body] = (counts[body] ?? 0) + 1;
    }
    return counts;
  }

  /** The host each key lands on, asserting it is the same host on every repeat. */
  async function hostsByKey(
    port: number,
    keys: string[],
    opts: (key: string) => Parameters<typeof send>[1],
    repeat = 3,
  ): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const k of keys) {
      const seen = new Set<string>();
      for (let i = 0; i < repeat; i++) seen.add((await send(port, opts(k))).body);
      expect([...seen], `key ${k}`).to.have.length(1);
      out.set(k, [...seen][0]!);
    }
    return out;
  }

  const keys = Array.from({ length: 24 }, (_, i) => `user-${i}`);

  it('ROUND_ROBIN splits by endpoint weight', async () => {
    const port = await start({ lbPolicy: 'ROUND_ROBIN' }, [
      ep(ups[0]!, { weight: 1 }),
      ep(ups[1]!, { weight: 3 }),
    ]);
    expect(await tally(port, 40)).to.deep.equal({ a: 10, b: 30 });
  });

  it('RANDOM splits by endpoint weight', async () => {
    const port = await start({ lbPolicy: 'RANDOM' }, [
      ep(ups[0]!, { weight: 1 }),
      ep(ups[1]!, { weight: 4 }),
    ]);
    const counts = await tally(port, 200);
    expect(counts.b).to.be.within(130, 190);
  });

  it('RING_HASH by header: the same key always reaches the same host, keys spread', async () => {
    const port = await start({ lbPolicy: 'RING_HASH', consistentHash: { httpHeaderName: 'x-user' } });
    const m = await hostsByKey(port, keys, (k) => ({ headers: { 'x-user': k } }));
    expect(new Set(m.values()).size).to.be.at.least(3);
  });

  it('MAGLEV by query parameter: the same key always reaches the same host, keys spread', async () => {
    const port = await start({ lbPolicy: 'MAGLEV', consistentHash: { httpQueryParameterName: 'user' } });
    const m = await hostsByKey(port, keys, (k) => ({ path: `/items?x=1&user=${k}` }));
    expect(new Set(m.values()).size).to.be.at.least(3);
  });

  it('RING_HASH by cookie; a missing cookie with a TTL is generated and returned with Set-Cookie', async () => {
    const port = await start({
      lbPolicy: 'RING_HASH',
      consistentHash: {
        httpCookie: {
          name: 'session',
          path: '/',
          ttlMs: 60_000,
          attributes: [{ name: 'SameSite', value: 'Lax' }],
        },
      },
    });
    const m = await hostsByKey(port, keys, (k) => ({ headers: { cookie: `theme=dark; session=${k}` } }));
    expect(new Set(m.values()).size).to.be.at.least(3);
    const first = await send(port);
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).to.match(/^session="[0-9a-f]{16}"; Max-Age=60; Path=\/; SameSite=Lax; HttpOnly$/);
    const cookie = setCookie.split(';')[0]!;
    const again = await tally(port, 10, { headers: { cookie } });
    expect(again).to.deep.equal({ [first.body]: 10 });
    // A request that carries the cookie gets no new one.
    expect((await send(port, { headers: { cookie } })).headers['set-cookie']).to.equal(undefined);
  });

  it('RING_HASH by source IP: each client address sticks to one host, addresses spread', async () => {
    const port = await start({ lbPolicy: 'RING_HASH', consistentHash: { useSourceIp: true } });
    const bySource = new Map<string, Set<string>>();
    for (let i = 2; i < 22; i++) {
      const localAddress = `127.0.0.${i}`;
      const seen = new Set<string>();
      for (let j = 0; j < 3; j++) seen.add(await getFrom(port, localAddress));
      bySource.set(localAddress, seen);
    }
    for (const [addr, seen] of bySource) expect([...seen], addr).to.have.length(1);
    expect(new Set([...bySource.values()].map((s) => [...s][0])).size).to.be.at.least(3);
  });

  for (const lbPolicy of ['RING_HASH', 'MAGLEV'] as const) {
    it(`${lbPolicy}: removing a host moves only (most of) its own keys`, async () => {
      const port = await start({ lbPolicy, consistentHash: { httpHeaderName: 'x-user' } });
      const many = Array.from({ length: 120 }, (_, i) => `k${i}`);
      const before = await hostsByKey(port, many, (k) => ({ headers: { 'x-user': k } }), 1);
      const r = proxy!.applyEndpoints({
        apiVersion: ENDPOINTS_API_VERSION,
        version: 'e2',
        clusters: { [C1]: ups.slice(0, 3).map((u) => ep(u)) },
      });
      expect(r.ok).to.equal(true);
      const after = await hostsByKey(port, many, (k) => ({ headers: { 'x-user': k } }), 1);
      const stayed = many.filter((k) => before.get(k) !== 'd');
      const kept = stayed.filter((k) => after.get(k) === before.get(k)).length;
      expect(stayed.length).to.be.greaterThan(60);
      expect(kept / stayed.length).to.be.at.least(0.75);
      for (const k of many) expect(after.get(k)).to.not.equal('d');
    });
  }

  it('rejects a Maglev table size that is not a prime, naming the cluster', async () => {
    proxy = await startProxy(
      tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(ups[0]!)] }),
    );
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(ups[0]!)] });
    Object.assign(t.clusters[0]!, {
      lbPolicy: 'MAGLEV',
      consistentHash: { useSourceIp: true, tableSize: 1000 },
    });
    const r = await proxy.applyTables(t);
    expect(r.ok).to.equal(false);
    expect(JSON.stringify(r)).to.include(`cluster ${C1}: consistentHash.tableSize 1000 must be a prime`);
  });

  describe('locality', () => {
    const node = {
      name: 'productpage-v1',
      namespace: 'shop',
      locality: { region: 'us-east', zone: 'us-east-1a' },
    };
    const at = (u: Upstream, region: string, zone: string, extra: Partial<Endpoint> = {}): Endpoint =>
      ep(u, { locality: { region, zone }, ...extra });
    const od = { consecutive5xxErrors: 1, maxEjectionPercent: 100, baseEjectionTimeMs: 60_000 };

    it('prefers the same zone, then the same region, then the failover region', async () => {
      const [a, b, c, d] = ups as [Upstream, Upstream, Upstream, Upstream];
      const eps = [
        at(a, 'us-east', 'us-east-1a'),
        at(b, 'us-east', 'us-east-1b'),
        at(c, 'eu-west', 'eu-west-1a'),
        at(d, 'ap-south', 'ap-south-1a'),
      ];
      const cluster: Partial<Cluster> = {
        lbPolicy: 'ROUND_ROBIN',
        outlierDetection: od,
        localityLb: { failover: [{ from: 'us-east', to: 'eu-west' }] },
      };
      let port = await start(cluster, eps, { node });
      expect(await tally(port, 8)).to.deep.equal({ a: 8 });
      await proxy!.stop(100);
      // The local zone unhealthy: same region next.
      port = await start(cluster, [{ ...eps[0]!, health: 'UNHEALTHY' }, ...eps.slice(1)], { node });
      expect(await tally(port, 8)).to.deep.equal({ b: 8 });
      await proxy!.stop(100);
      // The whole region unhealthy: the failover region, not the others.
      port = await start(
        cluster,
        [{ ...eps[0]!, health: 'UNHEALTHY' }, { ...eps[1]!, health: 'UNHEALTHY' }, ...eps.slice(2)],
        { node },
      );
      expect(await tally(port, 8)).to.deep.equal({ c: 8 });
    });

    it('fails over when the local hosts are ejected by outlier detection', async () => {
      const bad = await startUpstream('bad', (_req, res) => {
        res.writeHead(500);
        res.end('bad');
      });
      try {
        const port = await start(
          { lbPolicy: 'ROUND_ROBIN', outlierDetection: od, localityLb: {} },
          [
            at(bad, 'us-east', 'us-east-1a'),
            at(ups[1]!, 'us-east', 'us-east-1b'),
            at(ups[2]!, 'eu-west', 'x'),
          ],
          { node },
        );
        expect((await send(port)).status).to.equal(500);
        expect(await tally(port, 8)).to.deep.equal({ b: 8 });
      } finally {
        await bad.close();
      }
    });

    it('without localityLb (no outlier detection, as Istio) ignores locality', async () => {
      const port = await start(
        { lbPolicy: 'ROUND_ROBIN' },
        [at(ups[0]!, 'us-east', 'us-east-1a'), at(ups[2]!, 'eu-west', 'x')],
        { node },
      );
      expect(await tally(port, 8)).to.deep.equal({ a: 4, c: 4 });
    });

    it("spills over from a partly healthy priority by Envoy's priority load (overprovisioning 1.4)", () => {
      const def: Cluster = { name: C1, lbPolicy: 'ROUND_ROBIN', localityLb: {} };
      const state = new ClusterState(def, JSON.stringify(def), undefined, undefined, node.locality);
      try {
        state.setEndpoints(
          [
            at(ups[0]!, 'us-east', 'us-east-1a'),
            at(ups[1]!, 'us-east', 'us-east-1a'),
            at(ups[2]!, 'us-east', 'us-east-1a', { health: 'UNHEALTHY' }),
            at(ups[3]!, 'eu-west', 'eu-west-1a'),
          ],
          new Map(),
        );
        // 2 of 3 local hosts healthy: 1.4 x 66.7% = 93.3% stays local, 6.7% spills to priority 1.
        expect(state.views.map((v) => v.hosts.map((h) => h.port))).to.deep.equal([
          [ups[0]!.port, ups[1]!.port],
          [ups[3]!.port],
        ]);
        expect(state.viewCum[0]).to.be.closeTo(93.33, 0.01);
        expect(state.viewCum[1]).to.be.closeTo(100, 0.01);
      } finally {
        state.close();
        for (const h of state.hosts) h.pool.destroy().catch(() => {});
      }
    });

    it("takes the sidecar's own locality from the istio-locality pod label", () => {
      const w = workloadFromEnv({
        POD_NAME: 'p',
        ISTIO_METAJSON_LABELS: JSON.stringify({ app: 'p', 'istio-locality': 'us-east.us-east-1a.rack7' }),
      });
      expect(w.locality).to.deep.equal({ region: 'us-east', zone: 'us-east-1a', subzone: 'rack7' });
    });

    it('distribute splits by the locality weights of the matching rule', async () => {
      const port = await start(
        {
          lbPolicy: 'ROUND_ROBIN',
          localityLb: {
            distribute: [
              { from: 'ap-south/*', to: { 'ap-south/*': 100 } },
              { from: 'us-east/us-east-1a/*', to: { 'us-east/us-east-1a/*': 75, 'eu-west/*': 25 } },
            ],
          },
        },
        [
          at(ups[0]!, 'us-east', 'us-east-1a'),
          at(ups[1]!, 'eu-west', 'eu-west-1a'),
          at(ups[2]!, 'ap-south', 'ap-south-1a'),
        ],
        { node },
      );
      const counts = await tally(port, 200);
      expect(counts.c ?? 0).to.equal(0);
      expect(counts.a).to.be.within(125, 175);
      expect((counts.a ?? 0) + (counts.b ?? 0)).to.equal(200);
    });
  });

  describe('PASSTHROUGH', () => {
    it('connects to the original destination of a captured connection, else to the endpoints', async () => {
      const def: Cluster = { name: C1, lbPolicy: 'PASSTHROUGH' };
      const state = new ClusterState(def, JSON.stringify(def));
      state.setEndpoints([ep(ups[0]!)], new Map());
      try {
        const socket = new net.Socket();
        setCaptured(socket, { address: '127.0.0.1', port: ups[2]!.port, family: 4 });
        const req = {
          headers: [],
          path: '/',
          res: { conn: { socket } } as unknown as Downstream,
          setCookie: null,
        };
        const host = state.pick(req)!;
        expect(host.key).to.equal(`127.0.0.1:${ups[2]!.port}`);
        expect(state.pick(req)).to.equal(host);
        // A real request through the original-destination host's pool reaches that upstream.
        const body = await new Promise<string>((resolve, reject) => {
          let out = '';
          host.pool.dispatch(
            { path: '/', method: 'GET', headers: ['host', 'x'], body: null },
            {
              onConnect() {},
              onHeaders: () => true,
              onData: (c: Buffer) => {
                out += c.toString();
                return true;
              },
              onComplete: () => resolve(out),
              onError: reject,
            },
          );
        });
        expect(body).to.equal('c');
        const plain = { ...req, res: { conn: { socket: new net.Socket() } } as unknown as Downstream };
        expect(state.pick(plain)!.key).to.equal(`127.0.0.1:${ups[0]!.port}`);
      } finally {
        state.close();
        await Promise.all(state.hosts.map((h) => h.pool.destroy()));
      }
    });
  });
});

/** GET through the proxy from a given loopback source address; returns the body. */
function getFrom(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', localAddress, headers: { host: 'reviews:9080' }, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('proxy locality: failoverPriority (Istio localityLbSetting)', () => {
  let ups: Upstream[];
  let proxy: SidecarProxy | undefined;
  const node = {
    name: 'productpage-v1',
    namespace: 'shop',
    locality: { region: 'us-east', zone: 'us-east-1a' },
  };
  const od = { consecutive5xxErrors: 1, maxEjectionPercent: 100, baseEjectionTimeMs: 60_000 };
  // Resolved by the compiler: the proxy's own network and version.
  const fp = [
    { label: 'topology.istio.io/network', value: 'net1' },
    { label: 'version', value: 'v1' },
  ];
  const labelled = (u: Upstream, labels: Record<string, string>, extra: Partial<Endpoint> = {}) =>
    ep(u, { labels, ...extra });

  before(async () => {
    ups = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startUpstream(n)));
  });
  after(async () => {
    await Promise.all(ups.map((u) => u.close()));
  });
  afterEach(async () => {
    await proxy?.stop(100);
    proxy = undefined;
  });

  async function start(cluster: Partial<Cluster>, eps: Endpoint[]): Promise<number> {
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: eps }, { node });
    Object.assign(t.clusters[0]!, cluster);
    proxy = await startProxy(t);
    return outboundPort(proxy);
  }

  async function tally(port: number, n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const body = (await send(port)).body;
      counts[body] = (counts[body] ?? 0) + 1;
    }
    return counts;
  }

  it('sends to endpoints matching all labels, then the first N-1, then the rest', async () => {
    const [a, b, c, d] = ups as [Upstream, Upstream, Upstream, Upstream];
    const eps = [
      labelled(a, { 'topology.istio.io/network': 'net1', version: 'v1' }),
      labelled(b, { 'topology.istio.io/network': 'net1', version: 'v2' }),
      // Matches the second label but not the first: only the first n in order count.
      labelled(c, { 'topology.istio.io/network': 'net2', version: 'v1' }),
      labelled(d, {}),
    ];
    const cluster: Partial<Cluster> = {
      lbPolicy: 'ROUND_ROBIN',
      outlierDetection: od,
      localityLb: { failoverPriority: fp },
    };
    let port = await start(cluster, eps);
    expect(await tally(port, 8)).to.deep.equal({ a: 8 });
    await proxy!.stop(100);
    port = await start(cluster, [{ ...eps[0]!, health: 'UNHEALTHY' }, ...eps.slice(1)]);
    expect(await tally(port, 8)).to.deep.equal({ b: 8 });
    await proxy!.stop(100);
    // Priority 2 holds c and d alike (neither matches the first label).
    port = await start(cluster, [
      { ...eps[0]!, health: 'UNHEALTHY' },
      { ...eps[1]!, health: 'UNHEALTHY' },
      ...eps.slice(2),
    ]);
    expect(await tally(port, 8)).to.deep.equal({ c: 4, d: 4 });
  });

  it('fails over when the matching hosts are ejected by outlier detection', async () => {
    const bad = await startUpstream('bad', (_req, res) => {
      res.writeHead(500);
      res.end('bad');
    });
    try {
      const port = await start(
        { lbPolicy: 'ROUND_ROBIN', outlierDetection: od, localityLb: { failoverPriority: fp } },
        [
          labelled(bad, { 'topology.istio.io/network': 'net1', version: 'v1' }),
          labelled(ups[1]!, { 'topology.istio.io/network': 'net1' }),
          labelled(ups[2]!, {}),
        ],
      );
      expect((await send(port)).status).to.equal(500);
      expect(await tally(port, 8)).to.deep.equal({ b: 8 });
    } finally {
      await bad.close();
    }
  });

  it('with an explicit failover list, orders by label priority first, then by locality', async () => {
    const [a, b, c] = ups as [Upstream, Upstream, Upstream];
    const v1 = { 'topology.istio.io/network': 'net1', version: 'v1' };
    const eps = [
      // Same labels, other region: still before any endpoint with fewer matching labels.
      labelled(a, v1, { locality: { region: 'eu-west', zone: 'eu-west-1a' } }),
      labelled(b, v1, { locality: { region: 'ap-south', zone: 'ap-south-1a' } }),
      labelled(
        c,
        { 'topology.istio.io/network': 'net1' },
        { locality: { region: 'us-east', zone: 'us-east-1a' } },
      ),
    ];
    const cluster: Partial<Cluster> = {
      lbPolicy: 'ROUND_ROBIN',
      outlierDetection: od,
      localityLb: { failoverPriority: fp, failover: [{ from: 'us-east', to: 'eu-west' }] },
    };
    let port = await start(cluster, eps);
    // Within label priority 0 the failover region (eu-west) comes before the others.
    expect(await tally(port, 8)).to.deep.equal({ a: 8 });
    await proxy!.stop(100);
    port = await start(cluster, [{ ...eps[0]!, health: 'UNHEALTHY' }, ...eps.slice(1)]);
    expect(await tally(port, 8)).to.deep.equal({ b: 8 });
  });

  it('applies without a proxy locality (labels only)', () => {
    const def: Cluster = { name: C1, lbPolicy: 'ROUND_ROBIN', localityLb: { failoverPriority: fp } };
    const state = new ClusterState(def, JSON.stringify(def), undefined, undefined, undefined);
    try {
      state.setEndpoints(
        [
          labelled(ups[0]!, { version: 'v1' }),
          labelled(ups[1]!, { 'topology.istio.io/network': 'net1', version: 'v1' }),
          labelled(ups[2]!, { 'topology.istio.io/network': 'net1', version: 'v1' }, { health: 'UNHEALTHY' }),
        ],
        new Map(),
      );
      // Priority 0 (both labels) is half healthy: 1.4 x 50% = 70% stays, 30% goes to priority 2.
      expect(state.views.map((v) => v.hosts.map((h) => h.port))).to.deep.equal([
        [ups[1]!.port],
        [ups[0]!.port],
      ]);
      expect(state.viewCum[0]).to.be.closeTo(70, 0.01);
    } finally {
      state.close();
      for (const h of state.hosts) h.pool.destroy().catch(() => {});
    }
  });
});
