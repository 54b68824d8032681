/**
 * Tracing through real proxies on loopback: a client sidecar (outbound listener) in front of
 * a server sidecar (inbound listener) in front of a real app, both exporting to a real
 * Zipkin-compatible collector (an HTTP server accepting POST /api/v2/spans). Exporters are
 * flushed explicitly, so no assertion waits on a timer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import type { TelemetryOptions } from '../../src/proxy/telemetry/request-telemetry.js';
import { decideSampled, extractTrace, injectTrace } from '../../src/proxy/telemetry/tracing.js';
import type { ProxyTables } from '../../src/tables/index.js';
import {
  C1,
  deadPort,
  ep,
  INBOUND_CLUSTER,
  inboundTables,
  send,
  startUpstream,
  tables,
  type Upstream,
} from './helpers.js';

interface ZSpan {
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  kind: string;
  shared?: boolean;
  timestamp: number;
  duration: number;
  localEndpoint: { serviceName: string };
  remoteEndpoint?: { ipv4?: string; port?: number };
  tags: Record<string, string>;
}

interface Collector {
  port: number;
  spans: ZSpan[];
  posts: Array<{ path: string; contentType: string }>;
  close(): Promise<void>;
}

async function startCollector(): Promise<Collector> {
  const spans: ZSpan[] = [];
  const posts: Collector['posts'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/api/v2/spans') {
        res.writeHead(404).end();
        return;
      }
      posts.push({ path: req.url, contentType: req.headers['content-type'] ?? '' });
      spans.push(...(JSON.parse(Buffer.concat(chunks).toString()) as ZSpan[]));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    spans,
    posts,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const INBOUND = INBOUND_CLUSTER;

function serverTables(app: Upstream): ProxyTables {
  return inboundTables(app);
}

async function start(t: ProxyTables, telemetry: TelemetryOptions | undefined): Promise<SidecarProxy> {
  const p = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0 } },
    logger: createLogger('error'),
    ...(telemetry ? { telemetry } : {}),
  });
  await p.start();
  const r = await p.applyTables(t);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return p;
}

function tracing(collectorPort: number, sampling: number, nodeId: string): TelemetryOptions {
  return {
    tracing: { sampling, zipkin: { address: `127.0.0.1:${collectorPort}`, flushIntervalMs: 60_000 } },
    nodeId,
    instanceIp: '127.0.0.1',
  };
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;

describe('proxy tracing (B3, traceparent, Zipkin export)', () => {
  let app: Upstream;
  let collector: Collector;
  const proxies: SidecarProxy[] = [];

  before(async () => {
    app = await startUpstream('reviews');
    collector = await startCollector();
  });
  after(async () => {
    await app.close();
    await collector.close();
  });
  beforeEach(() => {
    app.seen.length = 0;
    collector.spans.length = 0;
    collector.posts.length = 0;
  });
  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.stop(50);
  });

  /** client sidecar -> server sidecar -> app; returns the client's outbound port. */
  async function chain(sampling: number, collectorPort = collector.port): Promise<number> {
    const server = await start(
      serverTables(app),
      tracing(collectorPort, sampling, 'sidecar~10.0.0.2~reviews'),
    );
    proxies.push(server);
    const inboundPort = server.listenerPort('virtualInbound')!;
    const client = await start(
      tables([{ name: 'r', forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
        [C1]: [ep({ port: inboundPort })],
      }),
      tracing(collectorPort, sampling, 'sidecar~10.0.0.1~productpage'),
    );
    proxies.push(client);
    return client.listenerPort('virtualOutbound')!;
  }

  async function flushAll(): Promise<void> {
    for (const p of proxies) await p.telemetry?.exporter?.flush();
  }

  it('two chained proxies export a CLIENT and a SERVER span of one new trace', async () => {
    const port = await chain(100);
    const r = await send(port, { path: '/reviews/1', headers: { 'user-agent': 'tracing-test' } });
    expect(r.status).to.equal(200);
    await flushAll();

    const seen = app.seen[0]!.headers;
    const traceId = seen['x-b3-traceid'] as string;
    expect(traceId).to.match(HEX32);
    expect(seen['x-b3-sampled']).to.equal('1');
    expect(seen.traceparent).to.equal(`00-${traceId}-${seen['x-b3-spanid']}-01`);

    expect(collector.posts.length).to.be.at.least(1);
    expect(collector.posts[0]!.contentType).to.equal('application/json');
    expect(collector.spans).to.have.length(2);
    const clientSpan = collector.spans.find((s) => s.kind === 'CLIENT')!;
    const serverSpan = collector.spans.find((s) => s.kind === 'SERVER')!;
    expect(clientSpan.traceId).to.equal(traceId);
    expect(serverSpan.traceId).to.equal(traceId);
    // A new trace: the client span is the root; the server half shares its id (Envoy default).
    expect(clientSpan.id).to.match(HEX16);
    expect(clientSpan.parentId).to.equal(undefined);
    expect(serverSpan.id).to.equal(clientSpan.id);
    expect(serverSpan.shared).to.equal(true);
    expect(seen['x-b3-spanid']).to.equal(clientSpan.id);

    expect(clientSpan.name).to.equal('reviews.shop.svc.cluster.local:9080/*');
    expect(clientSpan.localEndpoint.serviceName).to.equal('productpage.shop');
    expect(serverSpan.localEndpoint.serviceName).to.equal('reviews.shop');
    expect(clientSpan.remoteEndpoint?.ipv4).to.equal('127.0.0.1');
    expect(clientSpan.duration).to.be.greaterThan(0);
    expect(clientSpan.tags).to.include({
      component: 'proxy',
      'http.method': 'GET',
      'http.url': 'http://reviews:9080/reviews/1',
      'http.status_code': '200',
      'http.protocol': 'HTTP/1.1',
      response_flags: '-',
      upstream_cluster: C1,
      node_id: 'sidecar~10.0.0.1~productpage',
      'istio.canonical_service': 'productpage',
      'istio.namespace': 'shop',
      user_agent: 'tracing-test',
      'guid:x-request-id': seen['x-request-id'],
    });
    expect(clientSpan.tags).to.not.have.property('error');
    expect(serverSpan.tags).to.include({
      'istio.canonical_service': 'reviews',
      upstream_cluster: INBOUND,
      node_id: 'sidecar~10.0.0.2~reviews',
      'http.status_code': '200',
    });
  });

  it('B3 in: the trace continues as B3 and traceparent, the caller span is the parent', async () => {
    const port = await chain(0);
    const trace = 'a1b2c3d4e5f60718';
    const caller = '0102030405060708';
    const r = await send(port, {
      headers: { 'x-b3-traceid': trace, 'x-b3-spanid': caller, 'x-b3-sampled': '1' },
    });
    expect(r.status).to.equal(200);
    await flushAll();
    const seen = app.seen[0]!.headers;
    expect(seen['x-b3-traceid']).to.equal(trace);
    expect(seen['x-b3-parentspanid']).to.equal(caller);
    const spanId = seen['x-b3-spanid'] as string;
    expect(spanId).to.match(HEX16).and.not.equal(caller);
    expect(seen.traceparent).to.equal(`00-0000000000000000${trace}-${spanId}-01`);
    // Sampling 0 but the caller said sampled: honoured, both spans exported.
    expect(collector.spans).to.have.length(2);
    const clientSpan = collector.spans.find((s) => s.kind === 'CLIENT')!;
    const serverSpan = collector.spans.find((s) => s.kind === 'SERVER')!;
    expect(clientSpan.parentId).to.equal(caller);
    expect(serverSpan.parentId).to.equal(caller);
    expect(serverSpan.id).to.equal(clientSpan.id);
    expect(clientSpan.traceId).to.equal(trace);
  });

  it('B3 single header in: same trace and sampling decision out', async () => {
    const port = await chain(0);
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    await send(port, { headers: { b3: `${trace}-00f067aa0ba902b7-1` } });
    await flushAll();
    const seen = app.seen[0]!.headers;
    expect(seen.b3).to.equal(undefined);
    expect(seen['x-b3-traceid']).to.equal(trace);
    expect(seen['x-b3-parentspanid']).to.equal('00f067aa0ba902b7');
    expect(collector.spans).to.have.length(2);
  });

  it('traceparent in: the same trace id goes out in both formats', async () => {
    const port = await chain(100);
    const trace = '0af7651916cd43dd8448eb211c80319c';
    const parent = 'b7ad6b7169203331';
    await send(port, {
      headers: { traceparent: `00-${trace}-${parent}-01`, tracestate: 'congo=t61rcWkgMzE' },
    });
    await flushAll();
    const seen = app.seen[0]!.headers;
    expect(seen['x-b3-traceid']).to.equal(trace);
    expect(seen['x-b3-parentspanid']).to.equal(parent);
    expect(seen.traceparent).to.equal(`00-${trace}-${seen['x-b3-spanid']}-01`);
    expect(seen.tracestate).to.equal('congo=t61rcWkgMzE');
    expect(collector.spans.map((s) => s.traceId)).to.deep.equal([trace, trace]);
  });

  it('sampling 0 exports nothing but still propagates the trace (sampled=0)', async () => {
    const port = await chain(0);
    const r = await send(port);
    expect(r.status).to.equal(200);
    await flushAll();
    const seen = app.seen[0]!.headers;
    expect(seen['x-b3-traceid']).to.match(HEX32);
    expect(seen['x-b3-spanid']).to.match(HEX16);
    expect(seen['x-b3-sampled']).to.equal('0');
    expect(seen.traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(collector.posts).to.have.length(0);
    for (const p of proxies) expect(p.telemetry!.exporter!.queued).to.equal(0);
  });

  it('an incoming x-b3-sampled: 0 is honoured at 100% sampling', async () => {
    const port = await chain(100);
    await send(port, {
      headers: { 'x-b3-traceid': 'a1b2c3d4e5f60718', 'x-b3-spanid': '0102030405060708', 'x-b3-sampled': '0' },
    });
    await flushAll();
    expect(app.seen[0]!.headers['x-b3-sampled']).to.equal('0');
    expect(collector.posts).to.have.length(0);
  });

  it('x-client-trace-id forces sampling when no decision arrived (Envoy client_sampling)', async () => {
    const port = await chain(0);
    await send(port, { headers: { 'x-client-trace-id': 'debug-1' } });
    await flushAll();
    expect(app.seen[0]!.headers['x-b3-sampled']).to.equal('1');
    expect(collector.spans).to.have.length(2);
  });

  it('a 5xx span carries error=true and the response flags', async () => {
    const dead = await deadPort();
    const client = await start(
      tables([{ name: 'r', forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
        [C1]: [ep({ port: dead })],
      }),
      tracing(collector.port, 100, 'n'),
    );
    proxies.push(client);
    const r = await send(client.listenerPort('virtualOutbound')!);
    expect(r.status).to.equal(503);
    await flushAll();
    expect(collector.spans).to.have.length(1);
    expect(collector.spans[0]!.tags).to.include({
      error: 'true',
      response_flags: 'UF',
      'http.status_code': '503',
    });
  });

  it('a collector that is down does not affect requests; failures are counted', async () => {
    const dead = await deadPort();
    const port = await chain(100, dead);
    for (let i = 0; i < 3; i++) expect((await send(port)).status).to.equal(200);
    await flushAll();
    const client = proxies[1]!;
    expect(client.telemetry!.exporter!.stats.failed).to.equal(3);
    expect(client.prometheus()).to.include('envoy_tracing_zipkin_reports_failed 3');
  });

  it('without tracing configured, trace headers pass through untouched and none are added', async () => {
    const p = await start(
      tables([{ name: 'r', forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(app)] }),
      undefined,
    );
    proxies.push(p);
    expect(p.telemetry).to.equal(null);
    await send(p.listenerPort('virtualOutbound')!, { headers: { 'x-b3-traceid': 'a1b2c3d4e5f60718' } });
    const seen = app.seen[0]!.headers;
    expect(seen['x-b3-traceid']).to.equal('a1b2c3d4e5f60718');
    expect(seen['x-b3-spanid']).to.equal(undefined);
    expect(seen.traceparent).to.equal(undefined);
  });
});

describe('trace context parsing', () => {
  it('prefers B3 multi over b3 single over traceparent, and rejects malformed ids', () => {
    const t = extractTrace([
      'traceparent',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'X-B3-TraceId',
      'A1B2C3D4E5F60718',
      'x-b3-spanid',
      '0102030405060708',
    ]);
    expect(t.traceId).to.equal('a1b2c3d4e5f60718');
    expect(t.parentSpan).to.equal('0102030405060708');
    expect(t.sampled).to.equal(-1);
    expect(extractTrace(['x-b3-traceid', 'xyz', 'x-b3-spanid', '0102030405060708']).traceId).to.equal('');
    expect(
      extractTrace(['traceparent', '00-00000000000000000000000000000000-b7ad6b7169203331-01']).traceId,
    ).to.equal('');
    expect(extractTrace(['x-b3-flags', '1']).sampled).to.equal(1);
    expect(extractTrace(['b3', '0']).sampled).to.equal(0);
  });

  it('sampling: caller decision, then x-client-trace-id, then the percentage', () => {
    expect(decideSampled(extractTrace(['x-b3-sampled', '1']), 0)).to.equal(true);
    expect(decideSampled(extractTrace(['x-b3-sampled', '0']), 100)).to.equal(false);
    expect(decideSampled(extractTrace(['x-client-trace-id', 'abc']), 0)).to.equal(true);
    expect(decideSampled(extractTrace([]), 0)).to.equal(false);
    expect(decideSampled(extractTrace([]), 100)).to.equal(true);
  });

  it('injection replaces every incoming trace header and keeps the others', () => {
    const h = [
      'X-B3-TraceId',
      'old',
      'b3',
      'old',
      'traceparent',
      'old',
      'tracestate',
      'keep',
      'accept',
      '*/*',
    ];
    injectTrace(h, 'a1b2c3d4e5f60718', '0102030405060708', '', false);
    expect(h).to.deep.equal([
      'tracestate',
      'keep',
      'accept',
      '*/*',
      'x-b3-traceid',
      'a1b2c3d4e5f60718',
      'x-b3-spanid',
      '0102030405060708',
      'x-b3-sampled',
      '0',
      'traceparent',
      '00-0000000000000000a1b2c3d4e5f60718-0102030405060708-00',
    ]);
  });
});
