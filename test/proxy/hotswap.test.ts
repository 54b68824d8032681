import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import {
  C1,
  C2,
  ep,
  getText,
  outboundPort,
  send,
  startProxy,
  startUpstream,
  tables,
  type Upstream,
} from './helpers.js';

describe('proxy hot swap of compiled config', () => {
  let slowArrivals = 0;
  let v1: Upstream;
  let v2: Upstream;
  let proxy: SidecarProxy;

  beforeEach(async () => {
    slowArrivals = 0;
    const slowWhenAsked =
      (name: string) =>
      (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
        if (req.url === '/slow') slowArrivals++;
        setTimeout(() => res.end(name), req.url === '/slow' ? 300 : 0);
      };
    v1 = await startUpstream('v1', slowWhenAsked('v1'));
    v2 = await startUpstream('v2', slowWhenAsked('v2'));
  });
  afterEach(async () => {
    await proxy.stop(100);
    await v1.close();
    await v2.close();
  });

  const config = (cluster: string, version: string) => {
    const t = tables([{ forward: { clusters: [{ cluster, weight: 1 }] } }], {
      [C1]: [ep(v1)],
      [C2]: [ep(v2)],
    });
    t.version = version;
    return t;
  };

  it('switches new requests atomically while in-flight ones finish on the old config', async () => {
    proxy = await startProxy(config(C1, 'a'));
    const port = outboundPort(proxy);
    const inflight = Array.from({ length: 8 }, () => send(port, { path: '/slow' }));
    // Swap only once all eight are in flight upstream (a fixed sleep is flaky on a busy machine).
    for (let i = 0; i < 200 && slowArrivals < 8; i++) await new Promise((r) => setTimeout(r, 10));
    expect(slowArrivals).to.equal(8);
    const applied = await proxy.applyTables(config(C2, 'b'));
    expect(applied.ok).to.equal(true);
    expect(outboundPort(proxy)).to.equal(port); // same listener, no rebind
    const fresh = await send(port);
    expect(fresh.body).to.equal('v2');
    const old = await Promise.all(inflight);
    expect(old.map((r) => `${r.status} ${r.body}`)).to.deep.equal(Array(8).fill('200 v1'));
  });

  it('keeps serving under a stream of swaps without failing a request', async () => {
    proxy = await startProxy(config(C1, 'a'));
    const port = outboundPort(proxy);
    let stop = false;
    const results: number[] = [];
    const load = (async () => {
      for (let i = 0; i < 2000 && !stop; i++) results.push((await send(port)).status);
    })();
    for (let i = 0; i < 20; i++) {
      const r = await proxy.applyTables(config(i % 2 ? C1 : C2, `swap-${i}`));
      expect(r.ok).to.equal(true);
      await new Promise((res) => setTimeout(res, 10));
    }
    stop = true;
    await load;
    expect(results.length).to.be.greaterThan(10);
    expect(results.every((s) => s === 200)).to.equal(true);
  });

  it('rejects an invalid config, keeps the last good one, and shows the rejection on admin and metrics', async () => {
    proxy = await startProxy(config(C1, 'good'));
    const port = outboundPort(proxy);
    const bad = config(C2, 'bad') as unknown as {
      routeConfigs: Array<{ virtualHosts: Array<{ routes: unknown[] }> }>;
    };
    bad.routeConfigs[0]!.virtualHosts[0]!.routes = [
      { forward: { clusters: [{ cluster: 'missing', weight: 1 }] } },
    ];
    const r = await proxy.applyTables(bad);
    expect(r.ok).to.equal(false);
    expect((await send(port)).body).to.equal('v1');

    const dump = JSON.parse((await getText(proxy.adminPort, '/config_dump')).body);
    expect(dump.version).to.equal('good');
    expect(dump.status.rejected).to.equal(1);
    expect(dump.status.lastRejection.version).to.equal('bad');
    expect(dump.status.lastRejection.errors[0].path).to.equal(
      'routeConfigs[0].virtualHosts[0].routes[0].forward.clusters[0].cluster',
    );
    expect((await getText(proxy.adminPort, '/stats')).body).to.contain('isthmus.config.update_rejected: 1');
    const prom = (await getText(proxy.statsPort, '/stats/prometheus')).body;
    expect(prom).to.contain('isthmus_config_updates_total{type="tables",result="rejected"} 1');
    expect(prom).to.contain('isthmus_config_info{version="good"');
  });

  it('applies endpoint updates without touching routes, and rejects bad endpoint tables', async () => {
    proxy = await startProxy(config(C1, 'r1'));
    const port = outboundPort(proxy);
    expect((await send(port)).body).to.equal('v1');
    const eps = {
      apiVersion: 'isthmus.io/endpoints/v1',
      version: 'e2',
      clusters: { [C1]: [ep(v2)], [C2]: [ep(v2)] },
    };
    expect(proxy.applyEndpoints(eps).ok).to.equal(true);
    expect((await send(port)).body).to.equal('v2');
    expect(proxy.snapshot.version).to.equal('r1');
    const bad = proxy.applyEndpoints({
      ...eps,
      version: 'e3',
      clusters: { [C1]: [{ address: '', port: 1 }] },
    });
    expect(bad.ok).to.equal(false);
    expect((await send(port)).body).to.equal('v2');
    const dump = JSON.parse((await getText(proxy.adminPort, '/config_dump')).body);
    expect(dump.status.endpointsVersion).to.equal('e2');
    expect(dump.status.endpointsRejected).to.equal(1);
  });

  it('stop() drains: in-flight requests finish, new connections are refused', async () => {
    proxy = await startProxy(config(C1, 'd'));
    const port = outboundPort(proxy);
    const inflight = send(port, { path: '/slow' });
    await new Promise((r) => setTimeout(r, 50));
    const stopping = proxy.stop(2000);
    await new Promise((r) => setTimeout(r, 20));
    let refused = false;
    await send(port, { headers: { connection: 'close' } }).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
    const r = await inflight;
    expect(`${r.status} ${r.body}`).to.equal('200 v1');
    await stopping;
  });

  it('closes a listener removed by a new config and opens added ones', async () => {
    proxy = await startProxy(config(C1, 'l1'));
    const port = outboundPort(proxy);
    const next = config(C1, 'l2');
    next.listeners = [
      { name: 'virtualInbound', direction: 'inbound', port: 15006, protocol: 'http', routeConfig: '9080' },
    ];
    expect((await proxy.applyTables(next)).ok).to.equal(true);
    expect(proxy.listenerPort('virtualOutbound')).to.equal(undefined);
    const inbound = proxy.listenerPort('virtualInbound')!;
    expect((await send(inbound, { host: 'reviews' })).body).to.equal('v1');
    let refused = false;
    await send(port).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
  });
});
