/**
 * TCP proxying through `tcp` and `tls` listeners, WebSocket/Upgrade on the HTTP path, and
 * the protocol sniffer / SNI parser on real ClientHellos. Real sockets on loopback only.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import { parseSni, Sniffed, sniff } from '../../src/proxy/tcp/index.js';
import type { ProxyTables } from '../../src/tables/index.js';
import { deadPort, startProxy } from './helpers.js';
import { type EchoServer, eventually, exchange, sample, startEcho } from './tcp-helpers.js';

const DB = 'outbound|5432||db.shop.svc.cluster.local';

function tcpTables(port: number, extra: Partial<ProxyTables['clusters'][number]> = {}): ProxyTables {
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: 'tcp-1',
    node: { name: 'api', namespace: 'shop', app: 'api', version: 'v1' },
    listeners: [
      { name: 'db', direction: 'outbound', port: 5432, protocol: 'tcp', cluster: DB },
      { name: 'db-tls', direction: 'outbound', port: 5433, protocol: 'tls', cluster: DB },
    ],
    routeConfigs: [],
    clusters: [
      {
        name: DB,
        service: { host: 'db.shop.svc.cluster.local', name: 'db', namespace: 'shop' },
        ...extra,
      },
    ],
    endpoints: {
      [DB]: [{ address: '127.0.0.1', port, workload: { name: 'db-v1', namespace: 'shop', app: 'db' } }],
    },
  };
}

async function startTcpProxy(t: ProxyTables): Promise<SidecarProxy> {
  // startProxy binds listeners on 127.0.0.1; tcp listeners get ephemeral ports by name.
  const { SidecarProxy } = await import('../../src/proxy/index.js');
  const { createLogger } = await import('../../src/proxy/log.js');
  const proxy = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    listeners: { address: '127.0.0.1', ports: { db: 0, 'db-tls': 0 } },
    logger: createLogger('error'),
  });
  await proxy.start();
  const r = await proxy.applyTables(t);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return proxy;
}

describe('TCP proxying (tcp listeners)', () => {
  let echo: EchoServer;
  let proxy: SidecarProxy | undefined;

  before(async () => {
    echo = await startEcho();
  });
  afterEach(async () => {
    await proxy?.stop(0);
    proxy = undefined;
  });
  after(() => echo.close());

  it('echoes bytes through the cluster and counts Istio TCP metrics', async () => {
    proxy = await startTcpProxy(tcpTables(echo.port));
    const port = proxy.tcp.port('db')!;
    const payload = Buffer.alloc(256 * 1024, 7);
    const r = await exchange(port, payload);
    expect(r.error).to.equal(undefined);
    expect(r.data.equals(payload)).to.equal(true);
    const r2 = await exchange(port, 'hello');
    expect(r2.data.toString()).to.equal('hello');

    await eventually(() => proxy!.tcp.metrics.totals().closed === 2);
    const text = proxy.prometheus();
    const labels = {
      reporter: 'source',
      source_workload: 'api',
      destination_workload: 'db-v1',
      destination_service: 'db.shop.svc.cluster.local',
      request_protocol: 'tcp',
      response_flags: '-',
    };
    expect(sample(text, 'istio_tcp_connections_opened_total', labels)).to.equal(2);
    expect(sample(text, 'istio_tcp_connections_closed_total', labels)).to.equal(2);
    expect(sample(text, 'istio_tcp_received_bytes_total', labels)).to.equal(payload.length + 5);
    expect(sample(text, 'istio_tcp_sent_bytes_total', labels)).to.equal(payload.length + 5);
  });

  it('reports the bytes of a connection that is still open', async () => {
    proxy = await startTcpProxy(tcpTables(echo.port));
    const s = net.connect(proxy.tcp.port('db')!, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('abc');
    await new Promise((r) => s.once('data', r));
    const text = proxy.prometheus();
    expect(sample(text, 'istio_tcp_received_bytes_total', { request_protocol: 'tcp' })).to.equal(3);
    expect(sample(text, 'istio_tcp_connections_opened_total')).to.equal(1);
    expect(sample(text, 'istio_tcp_connections_closed_total')).to.equal(0);
    s.destroy();
  });

  it('closes connections over maxConnections with flag UO', async () => {
    proxy = await startTcpProxy(tcpTables(echo.port, { connectionPool: { maxConnections: 1 } }));
    const port = proxy.tcp.port('db')!;
    const first = net.connect(port, '127.0.0.1');
    first.write('x');
    await new Promise((r) => first.once('data', r));
    const second = await exchange(port, 'y', { timeoutMs: 2000 });
    expect(second.data.length).to.equal(0);
    expect(
      sample(proxy.prometheus(), 'istio_tcp_connections_opened_total', { response_flags: 'UO' }),
    ).to.equal(1);
    first.destroy();
    await eventually(() => proxy!.tcp.activeSessions === 0);
    expect((await exchange(port, 'z')).data.toString()).to.equal('z');
  });

  it('closes the client connection when the upstream refuses (UF) and after the connect timeout', async () => {
    proxy = await startTcpProxy(tcpTables(await deadPort()));
    const r = await exchange(proxy.tcp.port('db')!, 'q');
    expect(r.data.length).to.equal(0);
    await eventually(
      () => sample(proxy!.prometheus(), 'istio_tcp_connections_closed_total', { response_flags: 'UF' }) === 1,
    );
    const cluster = proxy.registry.get(DB)!;
    expect(cluster.stats.cxConnectFail).to.equal(1);
  });

  it('forwards a TLS ClientHello untouched on a tls listener and reads its SNI', async () => {
    proxy = await startTcpProxy(tcpTables(echo.port));
    const before = echo.received.length;
    const client = tls.connect({
      host: '127.0.0.1',
      port: proxy.tcp.port('db-tls')!,
      servername: 'db.example.com',
    });
    client.on('error', () => {});
    await eventually(() => echo.received.length > before && (echo.received[before]?.length ?? 0) > 0);
    client.destroy();
    const hello = echo.received[before]!;
    expect(sniff(hello)).to.equal(Sniffed.Tls);
    expect(parseSni(hello)).to.equal('db.example.com');
  });
});

describe('protocol sniffing and SNI parsing', () => {
  it('tells HTTP/1, the HTTP/2 preface, TLS and other bytes apart, waiting on prefixes', () => {
    expect(sniff(Buffer.from('GET / HTTP/1.1\r\n'))).to.equal(Sniffed.Http1);
    expect(sniff(Buffer.from('POST /x HTTP/1.1\r\n'))).to.equal(Sniffed.Http1);
    expect(sniff(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))).to.equal(Sniffed.Http2);
    expect(sniff(Buffer.from('PRI * HT'))).to.equal(Sniffed.NeedMore);
    expect(sniff(Buffer.from('P'))).to.equal(Sniffed.NeedMore);
    expect(sniff(Buffer.from('GE'))).to.equal(Sniffed.NeedMore);
    expect(sniff(Buffer.from([0x16, 0x03, 0x01]))).to.equal(Sniffed.Tls);
    expect(sniff(Buffer.from([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f]))).to.equal(Sniffed.Other); // postgres
    expect(sniff(Buffer.from('*1\r\n$4\r\nPING\r\n'))).to.equal(Sniffed.Other); // redis
  });

  it('reads SNI from real ClientHellos, incomplete ones wait, none without SNI', async () => {
    const hellos: Buffer[] = [];
    const server = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        hellos.push(d);
        s.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    for (const servername of ['reviews.shop.svc.cluster.local', undefined]) {
      const c = tls.connect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}) });
      c.on('error', () => {});
      await eventually(() => hellos.length === (servername ? 1 : 2));
    }
    server.close();
    expect(parseSni(hellos[0]!)).to.equal('reviews.shop.svc.cluster.local');
    expect(parseSni(hellos[0]!.subarray(0, 60))).to.equal(undefined);
    // Node omits SNI for an IP address host.
    expect(parseSni(hellos[1]!)).to.equal(null);
    expect(parseSni(Buffer.from('GET / HTTP/1.1\r\n'))).to.equal(null);
  });
});

describe('WebSocket / Upgrade through the HTTP path', () => {
  let upstream: http.Server;
  let upstreamPort: number;
  let proxy: SidecarProxy;

  before(async () => {
    upstream = http.createServer((_req, res) => {
      res.end('plain');
    });
    upstream.on('upgrade', (req, socket, head) => {
      if (req.headers.upgrade !== 'websocket') {
        socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
        return;
      }
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-path: ${req.url}\r\nx-host: ${req.headers.host}\r\n\r\n`,
      );
      if (head.length) socket.write(head);
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
    const { tables, C1 } = await import('./helpers.js');
    proxy = await startProxy(
      tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
        [C1]: [{ address: '127.0.0.1', port: upstreamPort }],
      }),
    );
  });
  after(async () => {
    await proxy.stop(0);
    upstream.closeAllConnections();
    upstream.close();
  });

  it('forwards the Upgrade, relays the 101 and pipes both ways', async () => {
    const port = proxy.listenerPort('virtualOutbound')!;
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/chat?room=1',
      headers: {
        host: 'reviews:9080',
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
      },
    });
    const [res, socket] = await new Promise<[http.IncomingMessage, net.Socket]>((resolve, reject) => {
      req.on('upgrade', (r, s) => resolve([r, s]));
      req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).to.equal(101);
    expect(res.headers['x-path']).to.equal('/chat?room=1');
    expect(res.headers['x-host']).to.equal('reviews:9080');
    const replies: string[] = [];
    socket.on('data', (d: Buffer) => replies.push(d.toString()));
    socket.write('ping-1');
    await eventually(() => replies.join('') === 'echo:ping-1');
    socket.write('ping-2');
    await eventually(() => replies.join('') === 'echo:ping-1echo:ping-2');
    socket.end();
    await eventually(
      () => sample(proxy.prometheus(), 'istio_requests_total', { response_code: '101' }) === 1,
    );
  });

  it('still serves ordinary requests on the same listener', async () => {
    const { send } = await import('./helpers.js');
    const r = await send(proxy.listenerPort('virtualOutbound')!);
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('plain');
  });
});
