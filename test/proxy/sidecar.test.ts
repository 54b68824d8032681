/**
 * Sidecar mode on loopback: the capture listeners with an injected original-destination reader
 * (the netns test, sidecar-netns.test.ts, uses the real SO_ORIGINAL_DST). Passthrough without
 * config, inbound passthrough from 127.0.0.6, protocol sniffing on an `auto` port, tcp
 * listeners chosen by original port, readiness, /quitquitquit.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { expect } from 'chai';
import type { OriginalDst } from '../../src/iptables/original-dst.js';
import { createLogger } from '../../src/proxy/log.js';
import { Sidecar } from '../../src/proxy/sidecar/index.js';
import type { ProxyTables } from '../../src/tables/index.js';
import { getText, startUpstream, type Upstream } from './helpers.js';
import { type EchoServer, eventually, exchange, sample, startEcho } from './tcp-helpers.js';

const ENV = {
  POD_NAME: 'api-7d9f-abcde',
  POD_NAMESPACE: 'shop',
  ISTIO_META_WORKLOAD_NAME: 'api',
  CANONICAL_SERVICE: 'api',
  CANONICAL_REVISION: 'v1',
};

let nextDst: OriginalDst | null = null;

async function startSidecar(onExit?: (code: number) => void): Promise<Sidecar> {
  return Sidecar.start({
    logger: createLogger('error'),
    env: ENV,
    ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0, status: 0 },
    bindAddress: '127.0.0.1',
    ipv6: false,
    drainMs: 200,
    originalDst: () => nextDst,
    ...(onExit ? { onExit } : {}),
  });
}

const to = (port: number): OriginalDst => ({ address: '127.0.0.1', port, family: 4 });

describe('sidecar mode (capture listeners, loopback)', () => {
  let echo: EchoServer;
  let greeter: EchoServer;
  let other: EchoServer;
  let up: Upstream;
  let sidecar: Sidecar | undefined;

  before(async () => {
    echo = await startEcho();
    greeter = await startEcho('220 smtp ready\r\n');
    other = await startEcho('other:');
    up = await startUpstream('v1');
  });
  afterEach(async () => {
    await sidecar?.stop(0);
    sidecar = undefined;
    nextDst = null;
  });
  after(async () => {
    await Promise.all([echo.close(), greeter.close(), other.close(), up.close()]);
  });

  it('is ready without config and passes outbound connections through to their original destination', async () => {
    sidecar = await startSidecar();
    expect((await getText(sidecar.proxy.healthPort, '/healthz/ready')).status).to.equal(200);
    nextDst = to(echo.port);
    expect((await exchange(sidecar.outboundPort, 'to-the-world')).data.toString()).to.equal('to-the-world');
    await eventually(() => sidecar!.proxy.tcp.metrics.totals().closed === 1);
    const text = sidecar.proxy.prometheus();
    const labels = {
      reporter: 'source',
      source_workload: 'api',
      source_workload_namespace: 'shop',
      source_app: 'api',
      destination_service: 'unknown',
      destination_service_name: 'PassthroughCluster',
      request_protocol: 'tcp',
    };
    expect(sample(text, 'istio_tcp_connections_opened_total', labels)).to.equal(1);
    expect(sample(text, 'istio_tcp_connections_closed_total', labels)).to.equal(1);
    expect(sample(text, 'istio_tcp_sent_bytes_total', labels)).to.equal(12);
    expect(sample(text, 'istio_tcp_received_bytes_total', labels)).to.equal(12);
  });

  it('passes inbound connections to the app from 127.0.0.6 (InboundPassthroughClusterIpv4)', async () => {
    sidecar = await startSidecar();
    nextDst = to(echo.port);
    const before = echo.peers.length;
    expect((await exchange(sidecar.inboundPort, 'hello app')).data.toString()).to.equal('hello app');
    expect(echo.peers[before]).to.match(/127\.0\.0\.6$/);
    await eventually(() => sidecar!.proxy.tcp.metrics.totals().closed === 1);
    const text = sidecar.proxy.prometheus();
    expect(
      sample(text, 'istio_tcp_connections_opened_total', {
        reporter: 'destination',
        destination_workload: 'api',
        destination_service_name: 'InboundPassthroughClusterIpv4',
      }),
    ).to.equal(1);
  });

  it('closes connections that were not redirected (BlackHoleCluster)', async () => {
    sidecar = await startSidecar();
    nextDst = null;
    const r = await exchange(sidecar.outboundPort, 'x');
    expect(r.data.length).to.equal(0);
    expect(
      sample(sidecar.proxy.prometheus(), 'istio_tcp_connections_opened_total', {
        destination_service_name: 'BlackHoleCluster',
      }),
    ).to.equal(1);
  });

  describe('with a config', () => {
    const C = 'outbound|80||reviews.shop.svc.cluster.local';
    const DB = 'outbound|5432||db.shop.svc.cluster.local';

    function config(): ProxyTables {
      const vhost = (port: number) => ({
        name: `reviews:${port}`,
        domains: ['reviews', `reviews:${port}`],
        routes: [{ forward: { clusters: [{ cluster: C, weight: 1 }] } }],
      });
      return {
        apiVersion: 'isthmus.io/tables/v1',
        version: 'c1',
        listeners: [
          {
            name: 'virtualOutbound',
            direction: 'outbound',
            port: 15001,
            protocol: 'auto',
            routeByPort: true,
          },
          // The app dials `other`'s port; the config sends it to the db cluster (the echo server).
          { name: 'db', direction: 'outbound', port: other.port, protocol: 'tcp', cluster: DB },
        ],
        routeConfigs: [
          { name: 'echo-port', port: echo.port, virtualHosts: [vhost(echo.port)] },
          { name: 'greeter-port', port: greeter.port, virtualHosts: [vhost(greeter.port)] },
        ],
        clusters: [{ name: C }, { name: DB }],
        endpoints: {
          [C]: [{ address: '127.0.0.1', port: up.port }],
          [DB]: [{ address: '127.0.0.1', port: echo.port }],
        },
      };
    }

    async function httpVia(
      port: number,
      host: string,
    ): Promise<{ status: number; body: string; id: unknown }> {
      return new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, path: '/p', headers: { host }, agent: false },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body, id: up.seen.at(-1)?.headers['x-request-id'] }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      });
    }

    it('sniffs an auto port: HTTP is routed by original port and Host, other bytes pass through', async () => {
      sidecar = await startSidecar();
      const r = await sidecar.proxy.applyTables(config());
      expect(r.ok, JSON.stringify(r)).to.equal(true);

      nextDst = to(echo.port);
      const seen = up.seen.length;
      const routed = await httpVia(sidecar.outboundPort, `reviews:${echo.port}`);
      expect(routed.status).to.equal(200);
      expect(routed.body).to.equal('v1');
      expect(up.seen.length).to.equal(seen + 1);
      expect(routed.id).to.be.a('string'); // added by the proxy: it went through the router

      // Same original port, not HTTP: straight to the original destination.
      nextDst = to(echo.port);
      expect((await exchange(sidecar.outboundPort, '\x00\x01binary')).data.toString()).to.equal(
        '\x00\x01binary',
      );

      // A server-first protocol on a sniffed port: sniffing gives up, the greeting arrives.
      nextDst = to(greeter.port);
      const g = await exchange(sidecar.outboundPort, 'EHLO me\r\n', { waitFirst: true });
      expect(g.data.toString()).to.equal('220 smtp ready\r\nEHLO me\r\n');

      expect(sample(sidecar.proxy.prometheus(), 'istio_requests_total', { response_code: '200' })).to.equal(
        1,
      );
    });

    it('hands an HTTP/2 prior-knowledge connection on a sniffed port to the HTTP/2 server', async () => {
      sidecar = await startSidecar();
      await sidecar.proxy.applyTables(config());
      nextDst = to(echo.port);
      const session = http2.connect(`http://127.0.0.1:${sidecar.outboundPort}`);
      session.on('error', () => {});
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/h2', ':authority': `reviews:${echo.port}` });
        let status = 0;
        let body = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('data', (c: Buffer) => {
          body += c.toString();
        });
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        req.end();
      });
      session.close();
      expect(r).to.deep.equal({ status: 200, body: 'v1' });
    });

    it('passes HTTP to unknown ports through untouched, and routes a tcp listener by original port', async () => {
      sidecar = await startSidecar();
      await sidecar.proxy.applyTables(config());
      nextDst = to(up.port);
      const plain = await httpVia(sidecar.outboundPort, 'anything');
      expect(plain.body).to.equal('v1');
      expect(plain.id).to.equal(undefined);

      nextDst = to(other.port);
      const before = echo.received.length;
      expect((await exchange(sidecar.outboundPort, 'to-db')).data.toString()).to.equal('to-db');
      expect(echo.received.length).to.equal(before + 1);
      await eventually(() => sidecar!.proxy.tcp.metrics.totals().closed >= 2);
      expect(
        sample(sidecar.proxy.prometheus(), 'istio_tcp_connections_closed_total', {
          destination_service: 'db.shop.svc.cluster.local',
        }),
      ).to.equal(1);
    });
  });

  it('stops and exits on POST /quitquitquit (status port), refusing GET', async () => {
    let exitCode: number | undefined;
    sidecar = await startSidecar((code) => {
      exitCode = code;
    });
    const statusPort = sidecar.status!.port;
    expect((await getText(statusPort, '/healthz/ready')).status).to.equal(200);
    expect((await getText(statusPort, '/quitquitquit')).status).to.equal(405);
    const r = await getText(statusPort, '/quitquitquit', 'POST');
    expect(r.status).to.equal(200);
    await eventually(() => exitCode === 0);
    expect(sidecar.proxy.isReady()).to.equal(false);
    const after = await exchange(sidecar.outboundPort, 'x', { timeoutMs: 1000 });
    expect(after.error).to.equal('ECONNREFUSED');
  });
});
