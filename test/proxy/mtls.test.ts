/**
 * Mesh mTLS between two sidecars on loopback (client sidecar -> server sidecar -> app), with
 * real TLS handshakes and certificates from an in-process mesh CA. The capture listeners get
 * an injected original-destination reader (the server's says "the app port").
 */
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { CertificateManager } from '../../src/agent/certificate-manager.js';
import type { MeshCa } from '../../src/ca/authority.js';
import type { Sidecar } from '../../src/proxy/sidecar/index.js';
import { classifyHello, clientHelloAlpn, HelloKind } from '../../src/proxy/tls/index.js';
import { createLogger } from '../../src/util/log.js';
import { getText, send, startUpstream, type Upstream } from './helpers.js';
import {
  clientTables,
  issue,
  ManualCertificates,
  newCa,
  SERVICE_PORT,
  SPIFFE,
  serverTables,
  startSidecar,
  startTestCaServer,
  to,
} from './mtls-helpers.js';
import { type EchoServer, eventually, exchange, sample, startEcho } from './tcp-helpers.js';

/** Sends one request on a fresh connection; resolves with the status or the socket error code. */
function rawRequest(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.on('connect', () => s.write('GET / HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n'));
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('close', () => resolve(data ? data.slice(9, 12) : 'closed'));
  });
}

/** A TLS client speaking mesh ALPN straight to the server sidecar, with or without a certificate. */
function tlsRequest(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      ALPNProtocols: ['istio-http/1.1', 'istio'],
      checkServerIdentity: () => undefined,
      ...opts,
    });
    let data = '';
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n'));
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(data ? data.slice(9, 12) : `error: ${e.message}`));
    s.on('close', () => resolve(data ? data.slice(9, 12) : 'closed'));
  });
}

describe('mesh mTLS between sidecars (loopback, real TLS)', () => {
  let ca: MeshCa;
  let app: Upstream;
  let echo: EchoServer;
  let server: Sidecar | undefined;
  let client: Sidecar | undefined;
  let serverCerts: ManualCertificates;
  let clientCerts: ManualCertificates;
  /** Where the server sidecar's captured connections were going (the app, or the echo server). */
  let serverDst = 0;

  before(async () => {
    ca = newCa();
    app = await startUpstream('reviews');
    echo = await startEcho();
  });
  beforeEach(async () => {
    serverCerts = new ManualCertificates(await issue(ca, 'shop', 'reviews'));
    clientCerts = new ManualCertificates(await issue(ca, 'shop', 'productpage'));
    serverDst = app.port;
  });
  afterEach(async () => {
    await Promise.all([server?.stop(0), client?.stop(0)]);
    server = client = undefined;
  });
  after(async () => {
    await Promise.all([app.close(), echo.close()]);
  });

  async function pair(
    opts: { inbound?: Parameters<typeof serverTables>[1]; client?: Parameters<typeof clientTables>[1] } = {},
  ) {
    server = await startSidecar(serverCerts, () => to(serverDst));
    client = await startSidecar(clientCerts, () => to(SERVICE_PORT));
    const s = await server.proxy.applyTables(serverTables(app.port, opts.inbound));
    const c = await client.proxy.applyTables(clientTables(server.inboundPort, opts.client));
    expect(s.ok && c.ok, JSON.stringify([s, c])).to.equal(true);
    return { server, client };
  }

  it('PERMISSIVE: mTLS from the client sidecar and plaintext from anyone both reach the app', async () => {
    const { server, client } = await pair();
    const viaMesh = await send(client.outboundPort);
    expect(viaMesh.status).to.equal(200);
    expect(viaMesh.body).to.equal('reviews');
    expect(await rawRequest(server.inboundPort)).to.equal('200');
    expect(server.proxy.inboundTls!.stats.terminated).to.equal(1);
    expect(server.proxy.inboundTls!.stats.plaintextAccepted).to.equal(1);

    const text = server.proxy.prometheus();
    expect(
      sample(text, 'istio_requests_total', {
        reporter: 'destination',
        source_principal: SPIFFE('shop', 'productpage'),
        destination_principal: SPIFFE('shop', 'reviews'),
        connection_security_policy: 'mutual_tls',
        response_code: '200',
      }),
    ).to.equal(1);
    expect(
      sample(text, 'istio_requests_total', {
        reporter: 'destination',
        source_principal: 'unknown',
        connection_security_policy: 'none',
      }),
    ).to.equal(1);
    // The client reports as source: Istio's source side says unknown for the policy.
    expect(
      sample(client.proxy.prometheus(), 'istio_requests_total', {
        reporter: 'source',
        destination_principal: SPIFFE('shop', 'reviews'),
        connection_security_policy: 'unknown',
        response_code: '200',
      }),
    ).to.equal(1);
  });

  it('STRICT: refuses plaintext, serves mTLS', async () => {
    const { server, client } = await pair({ inbound: { mode: 'STRICT' } });
    expect(await rawRequest(server.inboundPort)).to.be.oneOf(['closed', 'ECONNRESET']);
    expect(server.proxy.inboundTls!.stats.plaintextRefused).to.equal(1);
    expect((await send(client.outboundPort)).status).to.equal(200);
    expect(app.seen.length).to.be.greaterThan(0);
  });

  it('STRICT: a TLS client without a certificate (or with one from another CA) is refused', async () => {
    const { server } = await pair({ inbound: { mode: 'STRICT' } });
    const noCert = await tlsRequest(server.inboundPort, { ca: ca.rootCertPem });
    expect(noCert).to.match(/error|closed/);
    const stranger = await issue(newCa(), 'shop', 'productpage');
    const foreign = await tlsRequest(server.inboundPort, {
      ca: ca.rootCertPem,
      cert: stranger.certChainPem,
      key: stranger.keyPem,
    });
    expect(foreign).to.match(/error|closed/);
    // The same client with a mesh certificate gets through.
    const good = await issue(ca, 'shop', 'productpage');
    expect(
      await tlsRequest(server.inboundPort, { ca: ca.rootCertPem, cert: good.certChainPem, key: good.keyPem }),
    ).to.equal('200');
    await eventually(() => server.proxy.inboundTls!.stats.handshakeFailed >= 2);
  });

  it('port-level DISABLE serves plaintext only on that port', async () => {
    const { server } = await pair({
      inbound: { mode: 'STRICT', portLevel: { [String(app.port)]: 'DISABLE' } },
    });
    expect(await rawRequest(server.inboundPort)).to.equal('200');
  });

  it('the client refuses a server whose SPIFFE identity is not the expected one (503 UF)', async () => {
    const { server, client } = await pair({
      client: {
        tls: { mode: 'ISTIO_MUTUAL', auto: true, subjectAltNames: [SPIFFE('shop', 'ratings')] },
      },
    });
    const before = app.seen.length;
    const r = await send(client.outboundPort);
    expect(r.status).to.equal(503);
    expect(app.seen.length).to.equal(before);
    expect(server.proxy.inboundTls!.stats.terminated).to.equal(0);
    expect(
      sample(client.proxy.prometheus(), 'istio_requests_total', {
        response_code: '503',
        response_flags: 'UF',
      }),
    ).to.equal(1);
  });

  it('the client refuses a server with a certificate from another mesh root', async () => {
    serverCerts = new ManualCertificates(await issue(newCa(), 'shop', 'reviews'));
    const { client } = await pair();
    expect((await send(client.outboundPort)).status).to.equal(503);
  });

  it('auto mTLS leaves endpoints without a sidecar in plaintext (refused by a STRICT server)', async () => {
    const { server, client } = await pair({ inbound: { mode: 'STRICT' }, client: { meshed: false } });
    expect((await send(client.outboundPort)).status).to.equal(503);
    expect(server.proxy.inboundTls!.stats.plaintextRefused).to.equal(1);
    await client.proxy.applyTables(clientTables(server.inboundPort, { meshed: false, version: 'client-2' }));
    await server.proxy.applyTables(serverTables(app.port));
    expect((await send(client.outboundPort)).status).to.equal(200);
    expect(server.proxy.inboundTls!.stats.plaintextAccepted).to.equal(1);
  });

  it('TCP over mTLS: the server sees the peer identity in istio_tcp metrics', async () => {
    const { server, client } = await pair({ inbound: { mode: 'STRICT' } });
    serverDst = echo.port; // the server sidecar passes this connection through to the echo app
    client.proxy.tcp; // (client routes port 5432 to the tcp cluster by original destination)
    const c = await startSidecar(clientCerts, () => to(5432));
    try {
      await c.proxy.applyTables(clientTables(server.inboundPort));
      const r = await exchange(c.outboundPort, 'hello over mtls');
      expect(r.data.toString()).to.equal('hello over mtls');
      await eventually(() => server.proxy.tcp.metrics.totals().closed >= 1);
      const text = server.proxy.prometheus();
      expect(
        sample(text, 'istio_tcp_connections_opened_total', {
          reporter: 'destination',
          source_principal: SPIFFE('shop', 'productpage'),
          connection_security_policy: 'mutual_tls',
        }),
      ).to.equal(1);
      expect(
        sample(text, 'istio_tcp_received_bytes_total', { connection_security_policy: 'mutual_tls' }),
      ).to.equal(15);
    } finally {
      await c.stop(0);
    }
  });

  it('HTTP/2 between the sidecars over mTLS (ALPN istio-h2), HTTP/1.1 to the app', async () => {
    const { server, client } = await pair({
      inbound: { mode: 'STRICT' },
      client: { upstreamProtocol: 'http2' },
    });
    for (let i = 0; i < 3; i++) expect((await send(client.outboundPort)).status).to.equal(200);
    expect(server.proxy.inboundTls!.stats.terminated).to.equal(1);
    expect(
      sample(server.proxy.prometheus(), 'istio_requests_total', {
        reporter: 'destination',
        source_principal: SPIFFE('shop', 'productpage'),
        connection_security_policy: 'mutual_tls',
      }),
    ).to.equal(3);
  });

  it('is not ready until the workload certificate arrived', async () => {
    const pending = new ManualCertificates();
    const s = await startSidecar(pending, () => to(app.port));
    try {
      expect((await getText(s.proxy.healthPort, '/healthz/ready')).status).to.equal(503);
      pending.set(await issue(ca, 'shop', 'reviews'));
      expect((await getText(s.proxy.healthPort, '/healthz/ready')).status).to.equal(200);
    } finally {
      await s.stop(0);
    }
  });

  it('a rotated certificate is used by new connections; open ones keep working', async () => {
    const { server, client } = await pair({ inbound: { mode: 'STRICT' } });
    expect((await send(client.outboundPort)).status).to.equal(200);
    const v = server.proxy.identity!.version;
    serverCerts.set(await issue(ca, 'shop', 'reviews'));
    clientCerts.set(await issue(ca, 'shop', 'productpage'));
    expect(server.proxy.identity!.version).to.equal(v + 1);
    // The pooled upstream connection survives; a new one handshakes with the new certificates.
    expect((await send(client.outboundPort)).status).to.equal(200);
    const fresh = await issue(ca, 'shop', 'productpage');
    expect(
      await tlsRequest(server.inboundPort, {
        ca: ca.rootCertPem,
        cert: fresh.certChainPem,
        key: fresh.keyPem,
      }),
    ).to.equal('200');
  });
  it('resumes TLS sessions between sidecars (tickets), keeping the peer identity', async () => {
    // Short-lived upstream connections: new mTLS connections keep being opened.
    const { server, client } = await pair({
      inbound: { mode: 'STRICT' },
      client: { maxRequestsPerConnection: 1 },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await send(client.outboundPort)).status);
    const stats = server.proxy.inboundTls!.stats;
    expect(statuses, JSON.stringify(stats)).to.deep.equal([200, 200, 200, 200, 200, 200]);
    expect(stats.terminated).to.be.at.least(2);
    // The first connection is a full handshake; later ones offer its ticket.
    expect(stats.resumed).to.be.at.least(1);
    expect(stats.resumed).to.be.below(stats.terminated);
    // Every request, on resumed connections too, carries the verified client identity.
    expect(
      sample(server.proxy.prometheus(), 'istio_requests_total', {
        reporter: 'destination',
        source_principal: SPIFFE('shop', 'productpage'),
        connection_security_policy: 'mutual_tls',
        response_code: '200',
      }),
    ).to.equal(6);
  });

  it('a ticket is resumed by the server until its certificate rotates; then the handshake is full, not an error', async () => {
    const { server } = await pair({ inbound: { mode: 'STRICT' } });
    const own = await issue(ca, 'shop', 'productpage');
    let session: Buffer | undefined;
    const once = () =>
      new Promise<string>((resolve) => {
        const s = tls.connect({
          port: server.inboundPort,
          host: '127.0.0.1',
          ca: ca.rootCertPem,
          cert: own.certChainPem,
          key: own.keyPem,
          ALPNProtocols: ['istio-http/1.1', 'istio'],
          checkServerIdentity: () => undefined,
          ...(session ? { session } : {}),
        });
        let data = '';
        let reused = false;
        s.on('session', (b: Buffer) => (session = b));
        s.on('secureConnect', () => {
          reused = s.isSessionReused();
        });
        s.on('secureConnect', () =>
          s.write('GET / HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n'),
        );
        s.on('data', (d: Buffer) => (data += d.toString('latin1')));
        s.on('error', (e) => resolve(`error: ${e.message}`));
        s.on('close', () => resolve(`${data.slice(9, 12)}${reused ? ' resumed' : ''}`));
      });
    expect(await once()).to.equal('200');
    expect(session).to.not.equal(undefined);
    expect(await once()).to.equal('200 resumed');
    serverCerts.set(await issue(ca, 'shop', 'reviews')); // new context: the ticket is unknown
    expect(await once()).to.equal('200');
  });
});

describe('mesh mTLS rotation under load (CertificateManager, 3 s certificates)', () => {
  it('rotates both sidecars several times without failing a request', async function () {
    this.timeout(30_000);
    const ca = newCa();
    const { server: caServer, tokenPath } = await startTestCaServer(ca);
    const quiet = createLogger('mtls-test');
    quiet.silent = true;
    const manager = (ns: string, sa: string) =>
      new CertificateManager({
        caAddress: `127.0.0.1:${caServer.port}`,
        caRootPem: ca.rootCertPem,
        tokenPath: tokenPath(ns, sa),
        validitySeconds: 3,
        log: quiet,
      }).start();
    const sm = manager('shop', 'reviews');
    const cm = manager('shop', 'productpage');
    const app = await startUpstream('reviews');
    let server: Sidecar | undefined;
    let client: Sidecar | undefined;
    try {
      await Promise.all([sm.whenReady(), cm.whenReady()]);
      server = await startSidecar(sm, () => to(app.port));
      client = await startSidecar(cm, () => to(SERVICE_PORT));
      await server.proxy.applyTables(serverTables(app.port, { mode: 'STRICT' }));
      // Few requests per connection: new handshakes keep happening across rotations.
      await client.proxy.applyTables(clientTables(server.inboundPort, { maxRequestsPerConnection: 25 }));
      const statuses = new Map<number, number>();
      let errors = 0;
      const until = Date.now() + 8000;
      const worker = async () => {
        while (Date.now() < until) {
          try {
            const r = await send(client!.outboundPort);
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          } catch {
            errors++;
          }
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      const total = [...statuses.values()].reduce((a, b) => a + b, 0);
      expect(errors, 'client errors').to.equal(0);
      expect(Object.fromEntries(statuses), `${total} requests`).to.deep.equal({ 200: total });
      expect(total).to.be.greaterThan(200);
      // Each side rotated at least twice (initial + >= 2 rotations in 8 s of 3 s certificates).
      expect(server.proxy.identity!.version).to.be.at.least(3);
      expect(client.proxy.identity!.version).to.be.at.least(3);
      // Connections were recycled (maxRequestsPerConnection) all along, across the rotations.
      expect(server.proxy.inboundTls!.stats.terminated).to.be.at.least(20);
      expect(server.proxy.inboundTls!.stats.handshakeFailed).to.equal(0);
    } finally {
      sm.stop();
      cm.stop();
      await Promise.all([server?.stop(0), client?.stop(0)]);
      await app.close();
      await caServer.close();
    }
  });
});

describe('mtls/client-hello', () => {
  it('tells mesh TLS (istio ALPN) from other TLS and plaintext', async () => {
    const hello = await captureHello(['istio-http/1.1', 'istio']);
    expect(clientHelloAlpn(hello)).to.deep.equal(['istio-http/1.1', 'istio']);
    expect(classifyHello(hello)).to.equal(HelloKind.MeshTls);
    expect(classifyHello(await captureHello(['h2']))).to.equal(HelloKind.OtherTls);
    expect(classifyHello(await captureHello(undefined))).to.equal(HelloKind.OtherTls);
    expect(classifyHello(hello.subarray(0, 20))).to.equal(undefined);
    expect(classifyHello(Buffer.from('GET / HTTP/1.1\r\n'))).to.equal(HelloKind.Plain);
  });
});

/** The bytes of a real ClientHello offering `alpn`. */
async function captureHello(alpn: string[] | undefined): Promise<Buffer> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) =>
    srv.once('connection', (s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      });
    }),
  );
  const c = tls.connect({ port, host: '127.0.0.1', ...(alpn ? { ALPNProtocols: alpn } : {}) });
  c.on('error', () => {});
  const hello = await got;
  c.destroy();
  srv.close();
  return hello;
}
