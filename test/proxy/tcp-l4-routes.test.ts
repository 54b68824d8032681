/**
 * VirtualService tls/tcp routes in the proxy (listener `l4Routes`): real TLS clients and
 * servers on loopback, routed through the proxy by SNI without terminating TLS; weighted
 * splits of plain TCP connections; destination-subnet matches; the routing table itself
 * (L4Router) and the contract checks of validateTables.
 */
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import type { OriginalDst } from '../../src/iptables/original-dst.js';
import type { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import { Sidecar } from '../../src/proxy/sidecar/index.js';
import { ipv4Number, L4Router } from '../../src/proxy/tcp/l4-router.js';
import type { L4Route, Listener, ProxyTables } from '../../src/tables/index.js';
import { formatErrors, validateTables } from '../../src/tables/index.js';
import { newCa } from './mtls-helpers.js';
import { type EchoServer, eventually, exchange, sample, startEcho } from './tcp-helpers.js';

const svc = (host: string) => ({ host, name: host.split('.')[0]!, namespace: 'ext' });
const A = 'outbound|443||a.example.com';
const B = 'outbound|443||b.example.com';
const W = 'outbound|443||wild.example.com';
const D = 'outbound|443||default.example.com';
const V1 = 'outbound|5432|v1|db.shop.svc.cluster.local';
const V2 = 'outbound|5432|v2|db.shop.svc.cluster.local';
const SNI_ROUTES: L4Route[] = [
  { match: { sniHosts: ['a.example.com'] }, clusters: [{ cluster: A, weight: 100 }] },
  { match: { sniHosts: ['b.example.com'] }, clusters: [{ cluster: B, weight: 100 }] },
  { match: { sniHosts: ['*.wild.example.com'] }, clusters: [{ cluster: W, weight: 100 }] },
];

interface NamedTlsServer {
  name: string;
  port: number;
  close(): Promise<void>;
}

/** A TLS server that answers every handshake with its name and closes. */
async function startTlsServer(name: string, cert: { certChainPem: string; keyPem: string }) {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ cert: cert.certChainPem, key: cert.keyPem }, (s) => {
    s.on('error', () => {});
    s.end(name);
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  } satisfies NamedTlsServer;
}

/** A TLS handshake through the proxy with `sni` ('' = no SNI); resolves with what the server sent. */
function tlsCall(port: number, sni: string, ca: string): Promise<{ body: string; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca,
      ...(sni ? { servername: sni } : {}),
      // No SNI: the certificate cannot be checked against a name; the chain still is.
      ...(sni ? {} : { checkServerIdentity: () => undefined }),
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('close', () => resolve({ body: Buffer.concat(chunks).toString() }));
    s.on('error', (e: NodeJS.ErrnoException) => {
      resolve({ body: Buffer.concat(chunks).toString(), error: e.code ?? e.message });
      s.destroy();
    });
  });
}

async function startL4Proxy(t: ProxyTables): Promise<SidecarProxy> {
  const { SidecarProxy } = await import('../../src/proxy/index.js');
  const { createLogger } = await import('../../src/proxy/log.js');
  const ports = Object.fromEntries(t.listeners.map((l) => [l.name, 0]));
  const proxy = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    listeners: { address: '127.0.0.1', ports },
    logger: createLogger('error'),
  });
  await proxy.start();
  const r = await proxy.applyTables(t);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return proxy;
}

function base(listeners: Listener[], clusters: string[], endpoints: Record<string, number>): ProxyTables {
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: 'l4-1',
    node: { name: 'api', namespace: 'shop', app: 'api', version: 'v1' },
    listeners,
    routeConfigs: [],
    clusters: clusters.map((name) => ({
      name,
      service: svc(name.slice(name.lastIndexOf('|') + 1)),
    })),
    endpoints: Object.fromEntries(
      Object.entries(endpoints).map(([c, port]) => [c, [{ address: '127.0.0.1', port }]]),
    ),
  };
}

describe('TLS routes by SNI (tls listeners with l4Routes)', () => {
  const ca = newCa();
  let servers: Record<string, NamedTlsServer>;
  let proxy: SidecarProxy;

  before(async () => {
    const cert = ca.issueServingCert(
      ['a.example.com', 'b.example.com', 'x.wild.example.com', 'other.example.com', '127.0.0.1'],
      3600,
    );
    servers = {};
    for (const [c, name] of [
      [A, 'A'],
      [B, 'B'],
      [W, 'W'],
      [D, 'D'],
    ] as const)
      servers[c] = await startTlsServer(name, cert);
    const eps = Object.fromEntries(Object.entries(servers).map(([c, s]) => [c, s.port]));
    proxy = await startL4Proxy(
      base(
        [
          {
            name: 'egress',
            direction: 'outbound',
            port: 443,
            protocol: 'tls',
            cluster: D,
            l4Routes: SNI_ROUTES,
          },
          { name: 'strict', direction: 'outbound', port: 8443, protocol: 'tls', l4Routes: SNI_ROUTES },
        ],
        [A, B, W, D],
        eps,
      ),
    );
  });
  after(async () => {
    await proxy.stop(0);
    for (const s of Object.values(servers)) await s.close();
  });

  it('routes the still-encrypted connection to the cluster of its SNI, end-to-end TLS intact', async () => {
    const port = proxy.tcp.port('egress')!;
    expect(await tlsCall(port, 'a.example.com', ca.rootCertPem)).to.deep.equal({ body: 'A' });
    expect(await tlsCall(port, 'b.example.com', ca.rootCertPem)).to.deep.equal({ body: 'B' });
    expect(await tlsCall(port, 'A.Example.COM', ca.rootCertPem)).to.deep.equal({ body: 'A' });
  });

  it('matches a wildcard sniHost on subdomains only', async () => {
    const port = proxy.tcp.port('egress')!;
    expect(await tlsCall(port, 'x.wild.example.com', ca.rootCertPem)).to.deep.equal({ body: 'W' });
    // `*.wild.example.com` does not cover wild.example.com itself: the default serves it
    // (the certificate does not name it, so only the TLS check fails, after routing).
    const bare = await tlsCall(port, 'wild.example.com', ca.rootCertPem);
    expect(bare.error).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('sends unknown SNI and no SNI to the listener cluster (the default)', async () => {
    const port = proxy.tcp.port('egress')!;
    expect(await tlsCall(port, 'other.example.com', ca.rootCertPem)).to.deep.equal({ body: 'D' });
    expect(await tlsCall(port, '', ca.rootCertPem)).to.deep.equal({ body: 'D' });
  });

  it('closes unmatched connections without a default cluster, counted as BlackHoleCluster', async () => {
    const port = proxy.tcp.port('strict')!;
    expect(await tlsCall(port, 'a.example.com', ca.rootCertPem)).to.deep.equal({ body: 'A' });
    const before = sample(proxy.prometheus(), 'istio_tcp_connections_opened_total', {
      destination_service_name: 'BlackHoleCluster',
    });
    const r = await tlsCall(port, 'other.example.com', ca.rootCertPem);
    expect(r.body).to.equal('');
    expect(r.error).to.equal('ECONNRESET');
    await eventually(
      () =>
        sample(proxy.prometheus(), 'istio_tcp_connections_opened_total', {
          destination_service_name: 'BlackHoleCluster',
        }) ===
        before + 1,
      15_000,
    );
  });

  it('labels istio_tcp_* with the chosen cluster as destination_service', async () => {
    await eventually(() => proxy.tcp.activeSessions === 0, 15_000);
    const text = proxy.prometheus();
    const closed = (host: string) =>
      sample(text, 'istio_tcp_connections_closed_total', { reporter: 'source', destination_service: host });
    // a: lower and upper case + 1 on `strict`; b: 1; wildcard: 1; default: other, none, wild.example.com.
    expect(closed('a.example.com')).to.equal(3);
    expect(closed('b.example.com')).to.equal(1);
    expect(closed('wild.example.com')).to.equal(1);
    expect(closed('default.example.com')).to.equal(3);
    expect(
      sample(text, 'istio_tcp_sent_bytes_total', { destination_service: 'b.example.com' }),
    ).to.be.greaterThan(0);
  });
});

describe('TCP routes: weighted split and destination subnets (tcp listeners with l4Routes)', () => {
  let v1: EchoServer;
  let v2: EchoServer;
  let proxy: SidecarProxy | undefined;

  before(async () => {
    v1 = await startEcho('v1:');
    v2 = await startEcho('v2:');
  });
  afterEach(async () => {
    await proxy?.stop(0);
    proxy = undefined;
  });
  after(async () => {
    await v1.close();
    await v2.close();
  });

  const db = (l4Routes: L4Route[], cluster?: string): ProxyTables =>
    base(
      [
        {
          name: 'db',
          direction: 'outbound',
          port: 5432,
          protocol: 'tcp',
          l4Routes,
          ...(cluster ? { cluster } : {}),
        },
      ],
      [V1, V2],
      { [V1]: v1.port, [V2]: v2.port },
    );

  /** Opens `n` connections (at most 16 at a time) and counts which version greeted each. */
  async function split(port: number, n: number): Promise<{ v1: number; v2: number; other: number }> {
    const out = { v1: 0, v2: 0, other: 0 };
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        const r = await exchange(port, 'x');
        const who = r.data.toString().slice(0, 3);
        if (who === 'v1:') out.v1++;
        else if (who === 'v2:') out.v2++;
        else out.other++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return out;
  }

  it('splits 500 connections 80/20 across the weighted clusters (within 6 points)', async () => {
    proxy = await startL4Proxy(
      db([
        {
          clusters: [
            { cluster: V1, weight: 80 },
            { cluster: V2, weight: 20 },
          ],
        },
      ]),
    );
    const n = 500;
    const got = await split(proxy.tcp.port('db')!, n);
    expect(got.other).to.equal(0);
    expect(got.v1 + got.v2).to.equal(n);
    // Binomial(500, 0.8): sd 1.8 points; 6 points is > 3 sd.
    expect(Math.abs((got.v1 / n) * 100 - 80)).to.be.lessThan(6);
    await eventually(() => proxy!.tcp.metrics.totals().closed === n, 15_000);
    const text = proxy.prometheus();
    const opened = sample(text, 'istio_tcp_connections_opened_total', {
      destination_service: 'db.shop.svc.cluster.local',
    });
    expect(opened).to.equal(n);
  });

  it('never picks a 0-weight cluster', async () => {
    proxy = await startL4Proxy(
      db([
        {
          clusters: [
            { cluster: V1, weight: 0 },
            { cluster: V2, weight: 5 },
          ],
        },
      ]),
    );
    expect(await split(proxy.tcp.port('db')!, 40)).to.deep.equal({ v1: 0, v2: 40, other: 0 });
  });

  it('routes by destination subnet: the longest matching prefix wins, else the listener cluster', async () => {
    proxy = await startL4Proxy(
      db(
        [
          { match: { destinationSubnets: ['127.0.0.0/8'] }, clusters: [{ cluster: V1, weight: 1 }] },
          {
            match: { destinationSubnets: ['10.0.0.0/8', '127.0.0.1/32'] },
            clusters: [{ cluster: V2, weight: 1 }],
          },
        ],
        V1,
      ),
    );
    expect(await split(proxy.tcp.port('db')!, 5)).to.deep.equal({ v1: 0, v2: 5, other: 0 });
    await proxy.stop(0);
    proxy = await startL4Proxy(
      db([{ match: { destinationSubnets: ['10.0.0.0/8'] }, clusters: [{ cluster: V2, weight: 1 }] }], V1),
    );
    expect(await split(proxy.tcp.port('db')!, 5)).to.deep.equal({ v1: 5, v2: 0, other: 0 });
  });
});

describe('l4Routes on the capture path (sidecar, injected original destination)', () => {
  const ca = newCa();
  let a: NamedTlsServer;
  let dialled: NamedTlsServer;
  let v1: EchoServer;
  let v2: EchoServer;
  let sidecar: Sidecar;
  let nextDst: OriginalDst | null = null;
  const PASS = 'PassthroughCluster';

  before(async () => {
    const cert = ca.issueServingCert(['a.example.com', 'other.example.com'], 3600);
    a = await startTlsServer('A', cert);
    dialled = await startTlsServer('dialled', cert);
    v1 = await startEcho('v1:');
    v2 = await startEcho('v2:');
    sidecar = await Sidecar.start({
      logger: createLogger('error'),
      env: { POD_NAME: 'api-1', POD_NAMESPACE: 'shop', ISTIO_META_WORKLOAD_NAME: 'api' },
      ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0, status: 0 },
      bindAddress: '127.0.0.1',
      ipv6: false,
      drainMs: 200,
      originalDst: () => nextDst,
    });
    const t = base(
      [
        { name: 'virtualOutbound', direction: 'outbound', port: 15001, protocol: 'auto', routeByPort: true },
        // A 0.0.0.0 tls listener of an external service: known SNI to its cluster, the rest
        // (ALLOW_ANY) to wherever the app connected.
        {
          name: '0.0.0.0_tls',
          direction: 'outbound',
          port: dialled.port,
          protocol: 'tls',
          cluster: PASS,
          l4Routes: [{ match: { sniHosts: ['a.example.com'] }, clusters: [{ cluster: A, weight: 1 }] }],
        },
        {
          name: '0.0.0.0_tcp',
          direction: 'outbound',
          port: 7777,
          protocol: 'tcp',
          cluster: V1,
          l4Routes: [
            { match: { destinationSubnets: ['10.9.0.0/16'] }, clusters: [{ cluster: V2, weight: 1 }] },
          ],
        },
      ],
      [A, V1, V2],
      { [A]: a.port, [V1]: v1.port, [V2]: v2.port },
    );
    t.clusters.push({ name: PASS, lbPolicy: 'PASSTHROUGH' });
    const r = await sidecar.proxy.applyTables(t);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
  });
  after(async () => {
    await sidecar.stop(0);
    await Promise.all([a.close(), dialled.close(), v1.close(), v2.close()]);
  });

  it('routes a captured TLS connection by SNI, and passes unknown SNI to the original destination', async () => {
    nextDst = { address: '127.0.0.1', port: dialled.port, family: 4 };
    expect(await tlsCall(sidecar.outboundPort, 'a.example.com', ca.rootCertPem)).to.deep.equal({ body: 'A' });
    expect(await tlsCall(sidecar.outboundPort, 'other.example.com', ca.rootCertPem)).to.deep.equal({
      body: 'dialled',
    });
    await eventually(
      () =>
        sample(sidecar.proxy.prometheus(), 'istio_tcp_connections_closed_total', {
          destination_service_name: 'PassthroughCluster',
        }) === 1,
      15_000,
    );
    expect(
      sample(sidecar.proxy.prometheus(), 'istio_tcp_connections_closed_total', {
        destination_service: 'a.example.com',
      }),
    ).to.equal(1);
  });

  it('matches destinationSubnets against the original destination, not the capture address', async () => {
    nextDst = { address: '10.9.3.4', port: 7777, family: 4 };
    expect((await exchange(sidecar.outboundPort, 'x')).data.toString()).to.equal('v2:x');
    nextDst = { address: '10.10.3.4', port: 7777, family: 4 };
    expect((await exchange(sidecar.outboundPort, 'y')).data.toString()).to.equal('v1:y');
  });
});

describe('L4Router (the compiled l4Routes of a listener)', () => {
  const listener = (l4Routes: L4Route[], cluster?: string): Listener => ({
    name: 'l',
    direction: 'outbound',
    port: 443,
    protocol: 'tls',
    l4Routes,
    ...(cluster ? { cluster } : {}),
  });
  const to = (cluster: string, match?: L4Route['match']): L4Route => ({
    ...(match ? { match } : {}),
    clusters: [{ cluster, weight: 1 }],
  });

  it('prefers exact SNI over the longest wildcard over `*` over no sniHosts, regardless of order', () => {
    const r = new L4Router(
      listener([
        to('any-route'),
        to('star', { sniHosts: ['*'] }),
        to('short', { sniHosts: ['*.com'] }),
        to('long', { sniHosts: ['*.example.com'] }),
        to('exact', { sniHosts: ['api.example.com'] }),
      ]),
    );
    expect(r.pick('10.0.0.1', 'api.example.com')).to.equal('exact');
    expect(r.pick('10.0.0.1', 'web.example.com')).to.equal('long');
    expect(r.pick('10.0.0.1', 'x.org.com')).to.equal('short');
    expect(r.pick('10.0.0.1', 'localhost')).to.equal('star');
    expect(r.pick('10.0.0.1', '')).to.equal('any-route');
  });

  it('ranks destination prefix before SNI, keeps the first of equal routes, falls back to cluster', () => {
    const r = new L4Router(
      listener(
        [
          to('sni', { sniHosts: ['a.example.com'] }),
          to('net', { sniHosts: ['*.example.com'], destinationSubnets: ['10.1.0.0/16'] }),
          to('net-2', { sniHosts: ['*.example.com'], destinationSubnets: ['10.1.0.0/16'] }),
          to('v6', { destinationSubnets: ['2001:db8::/32'] }),
        ],
        'default',
      ),
    );
    expect(r.pick('10.1.2.3', 'a.example.com')).to.equal('net');
    expect(r.pick('::ffff:10.1.2.3', 'a.example.com')).to.equal('net');
    expect(r.pick('10.2.0.1', 'a.example.com')).to.equal('sni');
    expect(r.pick('10.2.0.1', 'b.example.com')).to.equal('default');
    expect(r.pick('2001:db8::7', '')).to.equal('v6');
    expect(r.pick(null, 'b.example.com')).to.equal('default');
    expect(new L4Router(listener([to('x', { sniHosts: ['x.io'] })])).pick('1.2.3.4', 'y.io')).to.equal(null);
    // Equal prefix and SNI in different subnet lists: the earlier route, whatever the order.
    const tie = (first: string, second: string) =>
      new L4Router(
        listener([
          to(first, { sniHosts: ['*.example.com'], destinationSubnets: ['192.168.0.0/16', '10.1.0.0/16'] }),
          to(second, { sniHosts: ['*.example.com'], destinationSubnets: ['10.1.0.0/16'] }),
        ]),
      ).pick('10.1.0.9', 'a.example.com');
    expect(tie('one', 'two')).to.equal('one');
    expect(tie('two', 'one')).to.equal('two');
  });
});

describe('ipv4Number (destination address of subnet matches)', () => {
  it('reads dotted quads and IPv4-mapped IPv6, and rejects anything else', () => {
    expect(ipv4Number('10.1.2.3')).to.equal(0x0a010203);
    expect(ipv4Number('255.255.255.255')).to.equal(0xffffffff);
    expect(ipv4Number('::ffff:127.0.0.1')).to.equal(0x7f000001);
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1..2.3',
      '1.2.3.4 ',
      '::1',
      '2001:db8::1',
      '1234.1.1.1',
    ])
      expect(ipv4Number(bad), bad).to.equal(-1);
  });
});

describe('validateTables: l4Routes', () => {
  const t = (l: Partial<Listener>, clusters = [A]): unknown =>
    base([{ name: 'l', direction: 'outbound', port: 443, protocol: 'tls', ...l } as Listener], clusters, {});

  it('accepts SNI, wildcard and subnet matches, with or without a default cluster', () => {
    const r = validateTables(
      t({
        l4Routes: [
          {
            match: { sniHosts: ['a.example.com', '*.example.com', '*'] },
            clusters: [{ cluster: A, weight: 1 }],
          },
          {
            match: { destinationSubnets: ['10.0.0.0/8', '2001:db8::/32', '10.1.2.3'] },
            clusters: [{ cluster: A, weight: 1 }],
          },
        ],
      }),
    );
    expect(r.ok, r.ok ? '' : formatErrors(r.errors)).to.equal(true);
  });

  it('names each bad field', () => {
    const r = validateTables(
      t({
        l4Routes: [
          {
            match: { sniHosts: ['A.example.com', 'a.*.com', 'x.io'] },
            clusters: [{ cluster: 'nope', weight: 1 }],
          },
          {
            match: { destinationSubnets: ['10.0.0.0/33', 'host.local'] },
            clusters: [{ cluster: A, weight: 0 }],
          },
          { clusters: [] },
        ],
      }),
    );
    expect(r.ok).to.equal(false);
    const lines = formatErrors(r.ok ? [] : r.errors).split('\n');
    expect(lines).to.have.members([
      'listeners[0].l4Routes[0].clusters[0].cluster: unknown cluster "nope"',
      'listeners[0].l4Routes[0].match.sniHosts[0]: "A.example.com" must be lower case',
      'listeners[0].l4Routes[0].match.sniHosts[1]: "a.*.com" must be a host name, `*.suffix` or `*`',
      'listeners[0].l4Routes[1].clusters: total weight must be > 0',
      'listeners[0].l4Routes[1].match.destinationSubnets[0]: prefix length "33" must be 0..32',
      'listeners[0].l4Routes[1].match.destinationSubnets[1]: "host.local" is not an IPv4 or IPv6 address',
      'listeners[0].l4Routes[2].clusters: at least one cluster is required',
    ]);
  });

  it('keeps sniHosts to tls listeners, l4Routes to tcp/tls ones, and needs a cluster or routes', () => {
    const sniOnTcp = validateTables(
      t({
        protocol: 'tcp',
        l4Routes: [{ match: { sniHosts: ['a.io'] }, clusters: [{ cluster: A, weight: 1 }] }],
      }),
    );
    expect(sniOnTcp.ok ? '' : formatErrors(sniOnTcp.errors)).to.equal(
      'listeners[0].l4Routes[0].match.sniHosts: sniHosts needs a tls listener',
    );
    const onHttp = validateTables(
      t({ protocol: 'http', routeByPort: true, l4Routes: [{ clusters: [{ cluster: A, weight: 1 }] }] }),
    );
    expect(onHttp.ok ? '' : formatErrors(onHttp.errors)).to.equal(
      'listeners[0].l4Routes: only tcp and tls listeners have l4Routes',
    );
    const neither = validateTables(t({}));
    expect(neither.ok ? '' : formatErrors(neither.errors)).to.equal(
      'listeners[0]: a tls listener needs cluster or l4Routes',
    );
  });
});
