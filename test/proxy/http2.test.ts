import http2 from 'node:http2';
import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { Cluster, Listener, Route } from '../../src/tables/index.js';
import {
  C1,
  deadPort,
  ep,
  outboundPort,
  send,
  startProxy,
  startUpstream,
  tables,
  type Upstream,
} from './helpers.js';
import {
  type H2Upstream,
  h2connect,
  h2request,
  h2tables,
  sleep,
  startDualUpstream,
  startH2Upstream,
} from './http2-helpers.js';

const route: Route = { forward: { clusters: [{ cluster: C1, weight: 1 }] } };

describe('proxy HTTP/2: h2c downstream and upstream, protocol translation', () => {
  let proxy: SidecarProxy | undefined;
  let h2up: H2Upstream | undefined;
  let h1up: Upstream | undefined;
  let client: http2.ClientHttp2Session | undefined;

  afterEach(async () => {
    client?.close();
    await proxy?.stop(100);
    await h2up?.close();
    await h1up?.close();
    proxy = h2up = h1up = client = undefined;
  });

  async function run(
    listener: Listener['protocol'],
    upstream: 'http1' | 'http2' | 'auto',
    port: number,
    cluster: Partial<Cluster> = {},
    r: Route = route,
  ): Promise<number> {
    const t = h2tables(tables([r], { [C1]: [ep({ port })] }), listener, upstream);
    Object.assign(t.clusters[0]!, cluster);
    proxy = await startProxy(t);
    return outboundPort(proxy);
  }

  it('serves h2c GET and POST end to end (h2 -> h2), mapping :authority', async () => {
    h2up = await startH2Upstream('v1');
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    const r = await h2request(client, { path: '/reviews/1?x=1', headers: { 'x-custom': 'a' } });
    expect(r.status).to.equal(200);
    expect(r.body.toString()).to.equal('v1');
    expect(r.headers['x-upstream']).to.equal('v1');
    const seen = h2up.seen[0]!.headers;
    expect(seen[':authority']).to.equal('reviews:9080');
    expect(seen[':path']).to.equal('/reviews/1?x=1');
    expect(seen['x-custom']).to.equal('a');
    expect(seen['x-request-id']).to.be.a('string');
    expect(seen.host).to.equal(undefined);

    const small = await h2request(client, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-length': '5' },
    });
    expect(small.headers['x-body-bytes']).to.equal('5');
    const big = Buffer.alloc(300 * 1024, 'b'); // unsized and over the buffer limit: streamed
    const large = await h2request(client, { method: 'POST', body: big });
    expect(large.status).to.equal(200);
    expect(large.headers['x-body-bytes']).to.equal(String(big.length));
    expect(h2up.seen.at(-1)!.body.equals(big)).to.equal(true);
  });

  it('multiplexes concurrent streams over one upstream connection', async () => {
    h2up = await startH2Upstream('v1', (stream) => {
      stream.resume();
      setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }, 30);
    });
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    const c = client;
    const replies = await Promise.all(Array.from({ length: 40 }, () => h2request(c)));
    expect(replies.every((r) => r.status === 200 && r.body.toString() === 'ok')).to.equal(true);
    expect(h2up.sessions).to.equal(1);
  });

  it('translates HTTP/2 downstream to an HTTP/1.1 upstream (Host, cookies, no h2 pseudo-headers)', async () => {
    h1up = await startUpstream('h1', (req, res, body) => {
      res.writeHead(200, { 'x-upstream': 'h1', 'x-len': String(body.length), connection: 'keep-alive' });
      res.end(`h1:${req.httpVersion}`);
    });
    const port = await run('http2', 'http1', h1up.port);
    client = await h2connect(port);
    const r = await h2request(client, {
      method: 'POST',
      path: '/p',
      headers: { cookie: ['a=1', 'b=2'] },
      body: 'abc',
    });
    expect(r.status).to.equal(200);
    expect(r.body.toString()).to.equal('h1:1.1');
    expect(r.headers.connection).to.equal(undefined);
    expect(r.headers['x-len']).to.equal('3');
    const seen = h1up.seen[0]!;
    expect(seen.headers.host).to.equal('reviews:9080');
    expect(seen.headers.cookie).to.equal('a=1; b=2');
    expect(seen.url).to.equal('/p');
    expect(seen.body).to.equal('abc');
  });

  it('translates HTTP/1.1 downstream to an h2c upstream on the same (sniffing) listener', async () => {
    h2up = await startH2Upstream('v1');
    const port = await run('http2', 'http2', h2up.port);
    const r = await send(port, { path: '/one', method: 'POST', body: 'xyz', headers: { 'x-h1': 'yes' } });
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('v1');
    const seen = h2up.seen[0]!;
    expect(seen.headers[':authority']).to.equal('reviews:9080');
    expect(seen.headers[':method']).to.equal('POST');
    expect(seen.headers['x-h1']).to.equal('yes');
    expect(seen.headers.connection).to.equal(undefined);
    expect(seen.body.toString()).to.equal('xyz');
  });

  it('auto clusters use the downstream protocol; auto listeners accept both', async () => {
    const dual = await startDualUpstream();
    try {
      const port = await run('auto', 'auto', dual.port);
      client = await h2connect(port);
      expect((await h2request(client)).body.toString()).to.equal('h2');
      expect((await send(port)).body).to.equal('h1');
      expect(dual.protocols).to.deep.equal(['h2:reviews:9080', 'h1:reviews:9080']);
    } finally {
      await dual.close();
    }
  });

  it('opens a new upstream connection after maxRequestsPerConnection', async () => {
    h2up = await startH2Upstream('v1');
    const port = await run('http2', 'http2', h2up.port, { connectionPool: { maxRequestsPerConnection: 2 } });
    client = await h2connect(port);
    for (let i = 0; i < 5; i++) expect((await h2request(client)).status).to.equal(200);
    expect(h2up.sessions).to.equal(3);
  });

  it('bounds concurrent h2 requests with http2MaxRequests (overflow 503 UO)', async () => {
    h2up = await startH2Upstream('v1', (stream) => {
      stream.resume();
      setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }, 100);
    });
    const port = await run('http2', 'http2', h2up.port, {
      connectionPool: { maxConnections: 1, http2MaxRequests: 3, http1MaxPendingRequests: 1 },
    });
    client = await h2connect(port);
    const c = client;
    const replies = await Promise.all(Array.from({ length: 6 }, () => h2request(c)));
    const codes = replies.map((r) => r.status).sort();
    // 3 in flight + 1 queued succeed (on one connection); 2 overflow.
    expect(codes).to.deep.equal([200, 200, 200, 200, 503, 503]);
    expect(replies.find((r) => r.status === 503)!.headers['x-envoy-overloaded']).to.equal('true');
    expect(h2up.sessions).to.equal(1);
  });

  it('answers 503 UF when the h2 upstream refuses connections, and 404 for no route', async () => {
    const port = await run('http2', 'http2', await deadPort());
    client = await h2connect(port);
    const r = await h2request(client);
    expect(r.status).to.equal(503);
    expect(r.body.toString()).to.match(/connection failure/);
    const nr = await h2request(client, { authority: 'nowhere:1234' });
    expect(nr.status).to.equal(404);
    expect(proxy!.prometheus()).to.match(/response_code="503",response_flags="UF"\} 1/);
  });

  it('propagates a client stream reset upstream (DC) without hurting the connection', async () => {
    let upstreamClosed = 0;
    h2up = await startH2Upstream('v1', (stream, headers) => {
      if (headers[':path'] === '/endless') {
        stream.respond({ ':status': 200 });
        const t = setInterval(() => stream.write('tick\n'), 10);
        stream.on('close', () => {
          clearInterval(t);
          upstreamClosed++;
        });
        return;
      }
      stream.respond({ ':status': 200 });
      stream.end('fine');
    });
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    const req = client.request({ ':path': '/endless', ':authority': 'reviews:9080' });
    await new Promise<void>((resolve) => req.once('data', () => resolve()));
    req.close(8); // NGHTTP2_CANCEL
    for (let i = 0; i < 100 && upstreamClosed === 0; i++) await sleep(10);
    expect(upstreamClosed).to.equal(1);
    expect((await h2request(client)).body.toString()).to.equal('fine');
    for (let i = 0; i < 50 && !/response_flags="DC"/.test(proxy!.prometheus()); i++) await sleep(10);
    expect(proxy!.prometheus()).to.match(/response_code="200",response_flags="DC"\} 1/);
  });

  it('retries a stream the upstream refused (REFUSED_STREAM) under retryOn refused-stream', async () => {
    h2up = await startH2Upstream('v1', (stream, _h, n) => {
      if (n === 1) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      stream.resume();
      stream.respond({ ':status': 200 });
      stream.end(`try${n}`);
    });
    const retried: Route = {
      forward: {
        clusters: [{ cluster: C1, weight: 1 }],
        retries: { attempts: 1, retryOn: ['refused-stream'], backoffBaseMs: 5 },
      },
    };
    const port = await run('http2', 'http2', h2up.port, {}, retried);
    client = await h2connect(port);
    const r = await h2request(client, { method: 'POST', body: 'x' });
    expect(r.status).to.equal(200);
    expect(r.body.toString()).to.equal('try2');
  });

  it('answers HEAD and 204 without a body over HTTP/2', async () => {
    h2up = await startH2Upstream('v1', (stream, headers) => {
      stream.resume();
      if (headers[':path'] === '/empty') {
        stream.respond({ ':status': 204 });
        stream.end();
        return;
      }
      stream.respond({ ':status': 200, 'content-length': '4' });
      stream.end(headers[':method'] === 'HEAD' ? undefined : 'body');
    });
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    const head = await h2request(client, { method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(head.headers['content-length']).to.equal('4');
    expect(head.body.length).to.equal(0);
    const empty = await h2request(client, { path: '/empty' });
    expect(empty.status).to.equal(204);
    expect(empty.body.length).to.equal(0);
    expect((await h2request(client)).body.toString()).to.equal('body');
  });

  it('resets the downstream stream when the upstream resets mid-response (UC)', async () => {
    h2up = await startH2Upstream('v1', (stream, headers) => {
      stream.resume();
      stream.respond({ ':status': 200 });
      if (headers[':path'] === '/ok') {
        stream.end('ok');
        return;
      }
      stream.write('partial');
      setTimeout(() => stream.destroy(new Error('upstream crash')), 30); // RST_STREAM(INTERNAL_ERROR) alone
    });
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    const req = client.request({ ':path': '/', ':authority': 'reviews:9080' });
    req.on('error', () => {});
    req.resume();
    await new Promise((r) => req.on('close', r));
    expect(req.rstCode).to.equal(http2.constants.NGHTTP2_INTERNAL_ERROR);
    expect((await h2request(client, { path: '/ok' })).body.toString()).to.equal('ok'); // session intact
    for (let i = 0; i < 50 && !/response_flags="UC"/.test(proxy!.prometheus()); i++) await sleep(10);
    expect(proxy!.prometheus()).to.match(/response_code="200",response_flags="UC"\} 1/);
  });

  it('drains on stop: GOAWAY, and an in-flight stream still completes', async () => {
    h2up = await startH2Upstream('v1', (stream) => {
      stream.resume();
      setTimeout(() => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200 });
        stream.end('late');
      }, 200);
    });
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    let goaway = false;
    client.on('goaway', () => {
      goaway = true;
    });
    const inflight = h2request(client);
    await sleep(50);
    const stopping = proxy!.stop(3000);
    const r = await inflight;
    await stopping;
    proxy = undefined;
    expect(r.status).to.equal(200);
    expect(r.body.toString()).to.equal('late');
    expect(goaway).to.equal(true);
  });

  it('relays large h2 responses with flow control intact', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 'q');
    h2up = await startH2Upstream('v1', (stream) => {
      stream.resume();
      stream.respond({ ':status': 200 });
      stream.end(big);
    });
    const port = await run('http2', 'http2', h2up.port);
    client = await h2connect(port);
    const r = await h2request(client);
    expect(r.body.length).to.equal(big.length);
  });
});
