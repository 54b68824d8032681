import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { Cluster } from '../../src/tables/index.js';
import { C1, ep, outboundPort, send, startProxy, startUpstream, tables, type Upstream } from './helpers.js';

describe('proxy load balancing', () => {
  let ups: Upstream[];
  let proxy: SidecarProxy;

  before(async () => {
    const hold =
      (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) =>
        setTimeout(() => res.end(name), req.url === '/hold' ? 400 : 0);
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
    const held = send(port, { path: '/hold' });
    await new Promise((r) => setTimeout(r, 50));
    const counts = await tally(port, 10);
    const busy = (await held).body;
    expect(counts[busy] ?? 0).to.equal(0);
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
