/**
 * Outlier detection on the TCP path, with real sockets on loopback: connect failures of a
 * `tcp` listener's cluster count as gateway errors (consecutiveGatewayErrors) and as 5xx
 * (consecutive5xxErrors), ejecting the refusing endpoint so connections go to the other; a
 * successful connect resets the consecutive counts (Envoy's TCP proxy outlier reporting).
 * A connect timeout is a TLS upstream that accepts TCP but never answers the ClientHello (the
 * connection counts as established only once TLS is, as in Envoy).
 */
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { ClusterState } from '../../src/proxy/upstream/cluster.js';
import type { ClusterTls, Endpoint, OutlierDetection, ProxyTables } from '../../src/tables/index.js';
import { deadPort } from './helpers.js';
import { issue, newCa, SPIFFE } from './mtls-helpers.js';
import { type EchoServer, exchange, startEcho } from './tcp-helpers.js';

const DB = 'outbound|5432||db.shop.svc.cluster.local';

function tcpTables(
  endpoints: Endpoint[],
  outlierDetection: OutlierDetection,
  extra: { tls?: ClusterTls; connectTimeoutMs?: number } = {},
): ProxyTables {
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: 'tcp-outlier-1',
    node: { name: 'api', namespace: 'shop', app: 'api', version: 'v1' },
    listeners: [{ name: 'db', direction: 'outbound', port: 5432, protocol: 'tcp', cluster: DB }],
    routeConfigs: [],
    clusters: [
      {
        name: DB,
        service: { host: 'db.shop.svc.cluster.local', name: 'db', namespace: 'shop' },
        lbPolicy: 'ROUND_ROBIN',
        outlierDetection,
        ...extra,
      },
    ],
    endpoints: { [DB]: endpoints },
  };
}

async function startTcpProxy(t: ProxyTables): Promise<SidecarProxy> {
  const { SidecarProxy } = await import('../../src/proxy/index.js');
  const { createLogger } = await import('../../src/proxy/log.js');
  const proxy = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    listeners: { address: '127.0.0.1', ports: { db: 0 } },
    logger: createLogger('error'),
  });
  await proxy.start();
  const r = await proxy.applyTables(t);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return proxy;
}

/** Opens `n` connections one after another; each sends its index and reports the echo or '' (closed). */
async function connections(port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await exchange(port, `c${i}`)).data.toString());
  return out;
}

describe('TCP proxy outlier detection', () => {
  let proxy: SidecarProxy | undefined;
  let echo: EchoServer;

  before(async () => {
    echo = await startEcho();
  });
  afterEach(async () => {
    await proxy?.stop(0);
    proxy = undefined;
  });
  after(() => echo.close());

  const cluster = (): ClusterState => proxy!.registry.get(DB)!;
  const host = (port: number) => cluster().hosts.find((h) => h.port === port)!;

  it('ejects the endpoint that refuses connections (consecutiveGatewayErrors) and sends every later connection to the other', async () => {
    const dead = await deadPort();
    proxy = await startTcpProxy(
      tcpTables(
        [
          { address: '127.0.0.1', port: dead },
          { address: '127.0.0.1', port: echo.port },
        ],
        {
          consecutive5xxErrors: 0,
          consecutiveGatewayErrors: 2,
          maxEjectionPercent: 100,
          baseEjectionTimeMs: 60_000,
        },
      ),
    );
    const port = proxy.tcp.port('db')!;
    // Round robin over two hosts: the refusing one gets 2 of the first 4 connections, then is ejected.
    const first = await connections(port, 4);
    expect(first.filter((r) => r === '')).to.have.length(2);
    expect(host(dead).outlier.ejected).to.equal(true);
    expect(host(echo.port).outlier.ejected).to.equal(false);
    const later = await connections(port, 6);
    expect(later).to.deep.equal(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
    const s = cluster().stats;
    expect(s.cxConnectFail).to.equal(2);
    expect(s.outlier.ejectionsEnforcedConsecutiveGatewayFailure).to.equal(1);
    expect(s.outlier.ejectionsEnforcedConsecutive5xx).to.equal(0);
  });

  it('counts connect failures in consecutive5xxErrors too (split_external_local_origin_errors off)', async () => {
    const dead = await deadPort();
    proxy = await startTcpProxy(
      tcpTables(
        [
          { address: '127.0.0.1', port: echo.port },
          { address: '127.0.0.1', port: dead },
        ],
        { consecutive5xxErrors: 3, maxEjectionPercent: 100, baseEjectionTimeMs: 60_000 },
      ),
    );
    const port = proxy.tcp.port('db')!;
    const first = await connections(port, 6);
    expect(first.filter((r) => r === '')).to.have.length(3);
    expect(host(dead).outlier.ejected).to.equal(true);
    expect(await connections(port, 4)).to.deep.equal(['c0', 'c1', 'c2', 'c3']);
    expect(cluster().stats.outlier.ejectionsEnforcedConsecutive5xx).to.equal(1);
  });

  it('resets the consecutive counts on a successful connect, so only failures in a row eject', async () => {
    // One endpoint whose server goes away and comes back on the same port.
    const port0 = await deadPort();
    let server: net.Server | null = null;
    const up = () =>
      new Promise<void>((resolve, reject) => {
        server = net.createServer({ allowHalfOpen: true }, (s) => {
          s.on('data', (d: Buffer) => s.write(d));
          s.on('end', () => s.end());
          s.on('error', () => {});
        });
        server.once('error', reject);
        server.listen(port0, '127.0.0.1', () => resolve());
      });
    const down = () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    proxy = await startTcpProxy(
      tcpTables([{ address: '127.0.0.1', port: port0 }], {
        consecutive5xxErrors: 2,
        consecutiveGatewayErrors: 2,
        maxEjectionPercent: 100,
        baseEjectionTimeMs: 60_000,
      }),
    );
    const port = proxy.tcp.port('db')!;
    try {
      expect(await connections(port, 1)).to.deep.equal(['']);
      expect(host(port0).outlier.consecutiveGateway).to.equal(1);
      expect(host(port0).outlier.consecutive5xx).to.equal(1);
      await up();
      expect(await connections(port, 1)).to.deep.equal(['c0']);
      expect(host(port0).outlier.consecutiveGateway).to.equal(0);
      expect(host(port0).outlier.consecutive5xx).to.equal(0);
      await down();
      expect(await connections(port, 1)).to.deep.equal(['']);
      expect(host(port0).outlier.ejected, 'fail, success, fail is not 2 in a row').to.equal(false);
      expect(await connections(port, 1)).to.deep.equal(['']);
      expect(host(port0).outlier.ejected, 'two failures in a row').to.equal(true);
      expect(cluster().stats.cxConnectFail).to.equal(3);
    } finally {
      await down();
    }
  });

  it('ejects an endpoint whose connects time out, and sends every later connection to the other', async () => {
    const ca = newCa();
    const cert = await issue(ca, 'shop', 'db');
    // The good endpoint: TLS echo. The bad one: accepts TCP, never says a word.
    const good = tls.createServer({ cert: cert.certChainPem, key: cert.keyPem }, (s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
    });
    const held = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => {});
    });
    const listen = (srv: net.Server) =>
      new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));
    const goodPort = await listen(good);
    const silentPort = await listen(silent);
    try {
      proxy = await startTcpProxy(
        tcpTables(
          [
            { address: '127.0.0.1', port: silentPort },
            { address: '127.0.0.1', port: goodPort },
          ],
          {
            consecutive5xxErrors: 0,
            consecutiveGatewayErrors: 2,
            maxEjectionPercent: 100,
            baseEjectionTimeMs: 60_000,
          },
          {
            tls: { mode: 'SIMPLE', caCertificatesPem: cert.rootPem, subjectAltNames: [SPIFFE('shop', 'db')] },
            // Long against a loopback TLS handshake to the good endpoint on a loaded machine.
            connectTimeoutMs: 1000,
          },
        ),
      );
      const port = proxy.tcp.port('db')!;
      const first = await connections(port, 4);
      expect(first.filter((r) => r === '')).to.have.length(2);
      expect(held.size, 'the silent endpoint saw the TCP connects').to.equal(2);
      expect(host(silentPort).outlier.ejected).to.equal(true);
      expect(await connections(port, 4)).to.deep.equal(['c0', 'c1', 'c2', 'c3']);
      expect(cluster().stats.outlier.ejectionsEnforcedConsecutiveGatewayFailure).to.equal(1);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
      await new Promise((r) => good.close(r));
    }
  });
});
