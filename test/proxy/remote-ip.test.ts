/**
 * AuthorizationPolicy remoteIpBlocks / notRemoteIpBlocks / `remote.ip` through a real
 * SidecarProxy on loopback: the client address comes from X-Forwarded-For as Envoy derives it
 * on a sidecar (rightmost entry, or skipping gatewayTopology.numTrustedProxies entries), while
 * ipBlocks keep matching the connection's peer (127.0.0.1).
 */
import { expect } from 'chai';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import type { AuthzPolicy, InboundSecurity, ProxyTables } from '../../src/tables/index.js';
import { inboundTables, send, startUpstream, type Upstream } from './helpers.js';

function tables(security: InboundSecurity, upstream: Upstream, version: string): ProxyTables {
  return inboundTables(upstream, version, { security });
}

const policy = (name: string, action: AuthzPolicy['action'], rules: AuthzPolicy['rules']): AuthzPolicy => ({
  name,
  namespace: 'shop',
  action,
  rules,
});

describe('proxy: remote.ip from X-Forwarded-For in AuthorizationPolicy', () => {
  let upstream: Upstream;
  let proxy: SidecarProxy | undefined;
  let n = 0;

  before(async () => {
    upstream = await startUpstream('reviews');
  });
  after(async () => {
    await upstream.close();
  });
  afterEach(async () => {
    await proxy?.stop(100);
    proxy = undefined;
  });

  async function start(security: InboundSecurity, numTrustedProxies = 0): Promise<number> {
    proxy = new SidecarProxy({
      adminPort: 0,
      statsPort: 0,
      healthPort: 0,
      serviceAddress: '127.0.0.1',
      listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0 } },
      logger: createLogger('error'),
    });
    proxy.security.xffNumTrustedHops = numTrustedProxies;
    await proxy.start();
    const r = await proxy.applyTables(tables(security, upstream, `v${++n}`));
    if (!r.ok) throw new Error(`tables rejected: ${JSON.stringify(r.errors)}`);
    return proxy.listenerPort('virtualInbound')!;
  }
  const get = (port: number, xff?: string) =>
    send(port, {
      path: '/',
      host: 'reviews.shop.svc.cluster.local:9080',
      headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
    }).then((r) => r.status);

  it('DENY remoteIpBlocks matches the rightmost X-Forwarded-For entry, not the connection', async () => {
    const port = await start({
      policies: [
        policy('deny-net', 'DENY', [{ from: [{ source: { remoteIpBlocks: ['203.0.113.0/24'] } }] }]),
      ],
    });
    expect(await get(port, '203.0.113.7')).to.equal(403);
    expect(await get(port, '198.51.100.1')).to.equal(200);
    // Only the last hop counts when no proxy is trusted: the left entry is the client's claim.
    expect(await get(port, '203.0.113.7, 10.0.0.1')).to.equal(200);
    expect(await get(port, '10.0.0.1, 203.0.113.7')).to.equal(403);
    // No header (or no IP in it): the connection's peer, 127.0.0.1.
    expect(await get(port)).to.equal(200);
    expect(await get(port, 'unknown')).to.equal(200);
  });

  it('ipBlocks keep matching the connection peer whatever X-Forwarded-For says', async () => {
    const port = await start({
      policies: [policy('deny-net', 'DENY', [{ from: [{ source: { ipBlocks: ['203.0.113.0/24'] } }] }])],
    });
    expect(await get(port, '203.0.113.7')).to.equal(200);
  });

  it('with numTrustedProxies 1 skips the trusted proxy and falls back to the peer when the header is short', async () => {
    const port = await start(
      {
        policies: [
          policy('deny-net', 'DENY', [{ from: [{ source: { remoteIpBlocks: ['203.0.113.0/24'] } }] }]),
        ],
      },
      1,
    );
    expect(await get(port, '203.0.113.7, 10.0.0.1')).to.equal(403);
    expect(await get(port, '198.51.100.1, 203.0.113.7')).to.equal(200);
    expect(await get(port, '203.0.113.7')).to.equal(200); // one entry < 2: the peer, 127.0.0.1
  });

  it('ALLOW with when remote.ip and with notRemoteIpBlocks', async () => {
    let port = await start({
      policies: [policy('office', 'ALLOW', [{ when: [{ key: 'remote.ip', values: ['198.51.100.0/24'] }] }])],
    });
    expect(await get(port, '198.51.100.9')).to.equal(200);
    expect(await get(port, '203.0.113.7')).to.equal(403);
    expect(await get(port)).to.equal(403);
    await proxy!.stop(100);
    port = await start({
      policies: [
        policy('not-lab', 'ALLOW', [{ from: [{ source: { notRemoteIpBlocks: ['192.0.2.0/24'] } }] }]),
      ],
    });
    expect(await get(port, '192.0.2.5')).to.equal(403);
    expect(await get(port, '198.51.100.9')).to.equal(200);
    expect(await get(port)).to.equal(200);
  });
});
