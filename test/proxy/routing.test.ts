import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { ForwardAction, Route } from '../../src/tables/index.js';
import {
  C1,
  C2,
  deadPort,
  ep,
  outboundPort,
  send,
  startProxy,
  startUpstream,
  tables,
  type Upstream,
} from './helpers.js';

const to = (cluster: string): ForwardAction => ({ clusters: [{ cluster, weight: 100 }] });

describe('proxy routing (real HTTP over loopback)', () => {
  let v1: Upstream;
  let v2: Upstream;
  let proxy: SidecarProxy;
  let port: number;

  before(async () => {
    v1 = await startUpstream('v1');
    v2 = await startUpstream('v2');
  });
  after(async () => {
    await v1.close();
    await v2.close();
  });
  afterEach(async () => {
    await proxy?.stop(100);
  });

  async function use(routes: Route[], extra = {}): Promise<void> {
    proxy = await startProxy(tables(routes, { [C1]: [ep(v1)], [C2]: [ep(v2)] }, extra));
    port = outboundPort(proxy);
  }

  it('matches uri exact, prefix and regex in order (first match wins)', async () => {
    await use([
      { match: { path: { exact: '/exact' } }, forward: to(C2) },
      { match: { path: { regex: '/re/[0-9]+' } }, forward: to(C2) },
      { match: { path: { prefix: '/api/' } }, forward: to(C2) },
      { forward: to(C1) },
    ]);
    expect((await send(port, { path: '/exact' })).body).to.equal('v2');
    expect((await send(port, { path: '/exact/more' })).body).to.equal('v1');
    expect((await send(port, { path: '/re/42?x=1' })).body).to.equal('v2');
    expect((await send(port, { path: '/re/4a' })).body).to.equal('v1');
    expect((await send(port, { path: '/api/items' })).body).to.equal('v2');
  });

  it('ignoreUriCase applies to exact and prefix', async () => {
    await use([
      { match: { path: { prefix: '/Admin' }, ignoreCase: true }, forward: to(C2) },
      { forward: to(C1) },
    ]);
    expect((await send(port, { path: '/ADMIN/x' })).body).to.equal('v2');
    expect((await send(port, { path: '/other' })).body).to.equal('v1');
  });

  it('matches headers (exact, regex, presence), withoutHeaders, query params, method, authority, port', async () => {
    await use([
      { match: { headers: [{ name: 'end-user', match: { exact: 'jason' } }] }, forward: to(C2) },
      { match: { headers: [{ name: 'x-canary' }], withoutHeaders: [{ name: 'x-stable' }] }, forward: to(C2) },
      { match: { queryParams: [{ name: 'v', match: { regex: '2|two' } }] }, forward: to(C2) },
      { match: { method: { exact: 'DELETE' } }, forward: to(C2) },
      { match: { authority: { prefix: 'reviews.shop' } }, forward: to(C2) },
      { match: { port: 9999 }, forward: to(C2) },
      { forward: to(C1) },
    ]);
    expect((await send(port, { headers: { 'end-user': 'jason' } })).body).to.equal('v2');
    expect((await send(port, { headers: { 'end-user': 'json' } })).body).to.equal('v1');
    expect((await send(port, { headers: { 'x-canary': '1' } })).body).to.equal('v2');
    expect((await send(port, { headers: { 'x-canary': '1', 'x-stable': '1' } })).body).to.equal('v1');
    expect((await send(port, { path: '/?a=1&v=two' })).body).to.equal('v2');
    expect((await send(port, { path: '/?v=3' })).body).to.equal('v1');
    expect((await send(port, { method: 'DELETE' })).body).to.equal('v2');
    expect((await send(port, { host: 'reviews.shop.svc.cluster.local:9080' })).body).to.equal('v2');
  });

  it('answers 404 (NR) when no virtual host or no route matches', async () => {
    await use([{ match: { path: { prefix: '/only' } }, forward: to(C1) }]);
    expect((await send(port, { host: 'ratings:9080' })).status).to.equal(404);
    expect((await send(port, { path: '/elsewhere' })).status).to.equal(404);
    expect((await send(port, { host: 'reviews:9081', path: '/only' })).status).to.equal(404);
  });

  it('splits traffic by weight', async () => {
    await use([
      {
        forward: {
          clusters: [
            { cluster: C1, weight: 80 },
            { cluster: C2, weight: 20 },
          ],
        },
      },
    ]);
    const counts: Record<string, number> = { v1: 0, v2: 0 };
    for (let i = 0; i < 400; i++) counts[(await send(port)).body]!++;
    expect(counts.v1! + counts.v2!).to.equal(400);
    expect(counts.v2).to.be.within(45, 125); // expected 80; binomial sd = 8
  });

  it('redirects with Istio semantics (path, authority, code)', async () => {
    await use([
      { match: { path: { prefix: '/old/' } }, redirect: { pathPrefix: '/new/' } },
      {
        match: { path: { exact: '/moved' } },
        redirect: { host: 'details', path: '/d', code: 308, scheme: 'https' },
      },
    ]);
    const a = await send(port, { path: '/old/x?q=1' });
    expect(a.status).to.equal(301);
    expect(a.headers.location).to.equal('http://reviews:9080/new/x?q=1');
    const b = await send(port, { path: '/moved' });
    expect(b.status).to.equal(308);
    expect(b.headers.location).to.equal('https://details/d');
  });

  it('serves a direct response with response header ops', async () => {
    await use([
      { directResponse: { status: 418, body: 'teapot' }, responseHeaders: { set: { 'x-direct': 'yes' } } },
    ]);
    const r = await send(port);
    expect(r.status).to.equal(418);
    expect(r.body).to.equal('teapot');
    expect(r.headers['x-direct']).to.equal('yes');
  });

  it('rewrites prefix, whole path, regex and authority', async () => {
    await use([
      {
        match: { path: { prefix: '/v1/' } },
        forward: { ...to(C1), rewrite: { pathPrefix: '/', authority: 'reviews-internal' } },
      },
      { match: { path: { exact: '/p' } }, forward: { ...to(C1), rewrite: { path: '/replaced' } } },
      {
        match: { path: { prefix: '/items/' } },
        forward: {
          ...to(C1),
          rewrite: { pathRegex: { pattern: '^/items/([0-9]+)$', substitution: '/item?id=\\1' } },
        },
      },
    ]);
    await send(port, { path: '/v1/books?page=2' });
    await send(port, { path: '/p?k=v' });
    await send(port, { path: '/items/77' });
    const seen = v1.seen.slice(-3);
    expect(seen[0]!.url).to.equal('/books?page=2');
    expect(seen[0]!.headers.host).to.equal('reviews-internal');
    expect(seen[1]!.url).to.equal('/replaced?k=v');
    expect(seen[2]!.url).to.equal('/item?id=77');
  });

  it('applies request and response header operations at vhost, route and destination level', async () => {
    const t = tables(
      [
        {
          requestHeaders: { set: { 'x-route': 'r' }, remove: ['x-drop'] },
          responseHeaders: { add: { 'x-resp-route': '1' } },
          forward: {
            clusters: [
              {
                cluster: C1,
                weight: 1,
                requestHeaders: { add: { 'x-dest': 'd' } },
                responseHeaders: { remove: ['x-upstream'] },
              },
            ],
          },
        },
      ],
      { [C1]: [ep(v1)] },
    );
    t.routeConfigs[0]!.virtualHosts[0]!.requestHeaders = { set: { 'x-vhost': 'vh' } };
    proxy = await startProxy(t);
    port = outboundPort(proxy);
    const r = await send(port, { headers: { 'x-drop': 'bye', 'x-route': 'client' } });
    const s = v1.seen.at(-1)!;
    expect(s.headers['x-route']).to.equal('r');
    expect(s.headers['x-drop']).to.equal(undefined);
    expect(s.headers['x-dest']).to.equal('d');
    expect(s.headers['x-vhost']).to.equal('vh');
    expect(s.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    expect(r.headers['x-resp-route']).to.equal('1');
    expect(r.headers['x-upstream']).to.equal(undefined);
  });

  it('accepts absolute-form requests (explicit forward-proxy mode) and routes by their authority', async () => {
    await use([{ forward: to(C1) }]);
    const r = await send(port, { absolute: true, host: 'reviews:9080', path: '/fwd?x=1' });
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('v1');
    expect(v1.seen.at(-1)!.url).to.equal('/fwd?x=1');
    expect((await send(port, { absolute: true, host: 'unknown:9080' })).status).to.equal(404);
    await send(port, { absolute: true, host: 'reviews:9080', path: '?only=query' });
    expect(v1.seen.at(-1)!.url).to.equal('/?only=query');
  });

  it('forwards request bodies (buffered and streamed)', async () => {
    await use([{ forward: to(C1) }]);
    await send(port, { method: 'POST', body: 'small body' });
    expect(v1.seen.at(-1)!.body).to.equal('small body');
    const big = 'x'.repeat(200 * 1024);
    await send(port, { method: 'POST', body: big });
    expect(v1.seen.at(-1)!.body.length).to.equal(big.length);
  });

  it('answers 503 UH when the cluster has no healthy endpoint', async () => {
    proxy = await startProxy(
      tables([{ forward: to(C1) }], { [C1]: [ep({ port: await deadPort() }, { health: 'UNHEALTHY' })] }),
    );
    const r = await send(outboundPort(proxy));
    expect(r.status).to.equal(503);
    expect(r.body).to.equal('no healthy upstream');
  });

  it('mirrors a share of requests to another cluster with Host suffixed -shadow', async () => {
    await use([{ forward: { ...to(C1), mirrors: [{ cluster: C2, percentage: 100 }] } }]);
    const before = v2.seen.length;
    const r = await send(port, { path: '/m' });
    expect(r.body).to.equal('v1');
    for (let i = 0; i < 50 && v2.seen.length === before; i++) await new Promise((res) => setTimeout(res, 10));
    expect(v2.seen.at(-1)!.headers.host).to.equal('reviews:9080-shadow');
  });

  it('handles CORS preflight and adds CORS headers for allowed origins', async () => {
    await use([
      {
        cors: {
          allowOrigins: [{ exact: 'https://shop.example' }],
          allowMethods: ['GET', 'POST'],
          maxAgeSeconds: 60,
        },
        forward: to(C1),
      },
    ]);
    const pre = await send(port, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });
    expect(pre.status).to.equal(200);
    expect(pre.headers['access-control-allow-methods']).to.equal('GET,POST');
    expect(pre.headers['access-control-max-age']).to.equal('60');
    const simple = await send(port, { headers: { origin: 'https://shop.example' } });
    expect(simple.headers['access-control-allow-origin']).to.equal('https://shop.example');
    const denied = await send(port, { headers: { origin: 'https://evil.example' } });
    expect(denied.headers['access-control-allow-origin']).to.equal(undefined);
  });

  it('selects the most specific virtual host domain (exact > *.suffix > *)', async () => {
    const t = tables([{ forward: to(C1) }], { [C1]: [ep(v1)], [C2]: [ep(v2)] });
    t.routeConfigs[0]!.virtualHosts.push(
      { name: 'wild', domains: ['*.example.com'], routes: [{ forward: to(C2) }] },
      { name: 'any', domains: ['*'], routes: [{ directResponse: { status: 204 } }] },
    );
    proxy = await startProxy(t);
    port = outboundPort(proxy);
    expect((await send(port, { host: 'a.example.com:9080' })).body).to.equal('v2');
    expect((await send(port, { host: 'reviews:9080' })).body).to.equal('v1');
    expect((await send(port, { host: 'zzz:9080' })).status).to.equal(204);
  });
});
