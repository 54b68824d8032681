/**
 * Inbound security through a real SidecarProxy: an inbound listener in front of a real
 * upstream on loopback; AuthorizationPolicy, RequestAuthentication (JWT signed here with
 * jose, key set inline), local rate limiting and a hot swap that removes the policy.
 */
import net from 'node:net';
import { expect } from 'chai';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { AuthzPolicy, InboundSecurity, ProxyTables } from '../../src/tables/index.js';
import { inboundTables, send, startProxy, startUpstream, type Upstream } from './helpers.js';

const ISSUER = 'https://issuer.test';

function securedTables(
  security: InboundSecurity | undefined,
  upstream: Upstream,
  version: string,
): ProxyTables {
  return inboundTables(upstream, version, security ? { security } : {});
}

const allow = (
  name: string,
  rules: AuthzPolicy['rules'],
  action: AuthzPolicy['action'] = 'ALLOW',
): AuthzPolicy => ({
  name,
  namespace: 'shop',
  action,
  rules,
});

describe('proxy inbound security (AuthorizationPolicy, JWT, rate limit)', () => {
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

  async function start(security: InboundSecurity | undefined): Promise<number> {
    proxy = await startProxy(securedTables(security, upstream, `v${++n}`));
    const port = proxy.listenerPort('virtualInbound');
    if (port === undefined) throw new Error('no inbound listener');
    return port;
  }
  const get = (port: number, path: string, headers: Record<string, string> = {}) =>
    send(port, { path, host: 'reviews.shop.svc.cluster.local:9080', headers });

  it('without a security section forwards everything', async () => {
    const port = await start(undefined);
    expect((await get(port, '/anything')).status).to.equal(200);
  });

  it('ALLOW by path: the listed path passes, another gets 403 RBAC: access denied', async () => {
    const port = await start({
      policies: [allow('by-path', [{ to: [{ operation: { paths: ['/api/*'] } }] }])],
    });
    const ok = await get(port, '/api/items');
    expect(ok.status).to.equal(200);
    expect(ok.body).to.equal('reviews');
    const denied = await get(port, '/admin');
    expect(denied.status).to.equal(403);
    expect(denied.body).to.equal('RBAC: access denied');
    // Matched after normalization: /api/../admin is /admin.
    expect((await get(port, '/api/%2E%2E/admin')).status).to.equal(403);
  });

  it('answers 400 to a path that cannot be normalized', async () => {
    const port = await start({ policies: [allow('all', [{}])] });
    expect((await get(port, '/a%00b')).status).to.equal(400);
  });

  it('DENY by header', async () => {
    const port = await start({
      policies: [allow('no-bots', [{ when: [{ key: 'request.headers[x-bot]', values: ['yes'] }] }], 'DENY')],
    });
    expect((await get(port, '/', { 'x-bot': 'yes' })).status).to.equal(403);
    expect((await get(port, '/', { 'x-bot': 'no' })).status).to.equal(200);
    expect((await get(port, '/')).status).to.equal(200);
  });

  it('an ALLOW policy with spec: {} (no rules) denies everything', async () => {
    const port = await start({ policies: [allow('deny-all', [])] });
    const r = await get(port, '/');
    expect(r.status).to.equal(403);
    expect(r.body).to.equal('RBAC: access denied');
  });

  describe('RequestAuthentication', () => {
    let jwks: string;
    let privateKey: Parameters<SignJWT['sign']>[0];
    before(async () => {
      const pair = await generateKeyPair('RS256');
      privateKey = pair.privateKey;
      const jwk = await exportJWK(pair.publicKey);
      jwks = JSON.stringify({ keys: [{ ...jwk, kid: 'k1', alg: 'RS256', use: 'sig' }] });
    });
    const token = (exp: number) =>
      new SignJWT({ scope: 'read' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(ISSUER)
        .setSubject('alice')
        .setIssuedAt(exp - 3600)
        .setExpirationTime(exp)
        .sign(privateKey);
    const now = () => Math.floor(Date.now() / 1000);
    const security = (): InboundSecurity => ({
      jwtRules: [{ issuer: ISSUER, jwks }],
      policies: [allow('require-jwt', [{ from: [{ source: { requestPrincipals: [`${ISSUER}/*`] } }] }])],
    });

    it('a valid token passes (and is not forwarded), an expired one gets 401, none gets 403', async () => {
      const port = await start(security());
      const seen = upstream.seen.length;
      const ok = await get(port, '/', { authorization: `Bearer ${await token(now() + 600)}` });
      expect(ok.status).to.equal(200);
      expect(upstream.seen[seen]?.headers.authorization).to.equal(undefined);

      const expired = await get(port, '/', { authorization: `Bearer ${await token(now() - 600)}` });
      expect(expired.status).to.equal(401);
      expect(expired.body).to.equal('Jwt is expired');
      expect(expired.headers['www-authenticate']).to.match(
        /^Bearer realm="http:\/\/.+", error="invalid_token"$/,
      );

      const bad = await get(port, '/', { authorization: 'Bearer not.a.jwt' });
      expect(bad.status).to.equal(401);

      const missing = await get(port, '/');
      expect(missing.status).to.equal(403);
      expect(missing.body).to.equal('RBAC: access denied');
    });

    it('without an AuthorizationPolicy a request without a token passes', async () => {
      const port = await start({ jwtRules: [{ issuer: ISSUER, jwks }] });
      expect((await get(port, '/')).status).to.equal(200);
    });
  });

  it('rate limit 5/s: the 6th request in a burst gets 429 local_rate_limited', async () => {
    const port = await start({
      rateLimit: { workload: { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 1000 } },
    });
    const statuses: number[] = [];
    let last = { status: 0, body: '' };
    for (let i = 0; i < 6; i++) {
      last = await get(port, '/');
      statuses.push(last.status);
    }
    expect(statuses.slice(0, 5)).to.deep.equal([200, 200, 200, 200, 200]);
    expect(statuses[5]).to.equal(429);
    expect(last.body).to.equal('local_rate_limited');
  });

  it('denied requests do not spend rate-limit tokens', async () => {
    const port = await start({
      policies: [allow('only-api', [{ to: [{ operation: { paths: ['/api'] } }] }])],
      rateLimit: { workload: { maxTokens: 2, tokensPerFill: 2, fillIntervalMs: 60_000 } },
    });
    for (let i = 0; i < 5; i++) expect((await get(port, '/other')).status).to.equal(403);
    expect((await get(port, '/api')).status).to.equal(200);
    expect((await get(port, '/api')).status).to.equal(200);
    expect((await get(port, '/api')).status).to.equal(429);
  });

  it('hot swap: removing the policy lets requests through again, adding it back denies', async () => {
    const port = await start({ policies: [allow('deny-all', [])] });
    expect((await get(port, '/')).status).to.equal(403);
    const p = proxy!;
    const applied = await p.applyTables(securedTables(undefined, upstream, `v${++n}`));
    expect(applied.ok).to.equal(true);
    expect(p.listenerPort('virtualInbound')).to.equal(port);
    expect((await get(port, '/')).status).to.equal(200);
    const back = await p.applyTables(
      securedTables({ policies: [allow('deny-all', [])] }, upstream, `v${++n}`),
    );
    expect(back.ok).to.equal(true);
    expect((await get(port, '/')).status).to.equal(403);
  });

  it('outbound listeners never enforce the inbound policies', async () => {
    const t = securedTables({ policies: [allow('deny-all', [])] }, upstream, `v${++n}`);
    t.listeners.push({
      name: 'virtualOutbound',
      direction: 'outbound',
      port: 15001,
      protocol: 'http',
      routeConfig: 'inbound|9080',
    });
    proxy = await startProxy(t);
    const out = proxy.listenerPort('virtualOutbound')!;
    expect((await get(out, '/')).status).to.equal(200);
    expect((await get(proxy.listenerPort('virtualInbound')!, '/')).status).to.equal(403);
  });

  describe('TCP', () => {
    let echo: net.Server;
    let echoPort = 0;
    before(async () => {
      echo = net.createServer((c) => c.pipe(c));
      await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
      echoPort = (echo.address() as net.AddressInfo).port;
    });
    after(() => new Promise<void>((r) => echo.close(() => r())));

    const tcpTables = (security: InboundSecurity) => {
      const t = securedTables(security, upstream, `v${++n}`);
      t.listeners.push({
        name: 'inbound_tcp',
        direction: 'inbound',
        port: 9000,
        protocol: 'tcp',
        address: '127.0.0.1',
        cluster: 'inbound|9000||',
      });
      t.clusters.push({ name: 'inbound|9000||' });
      t.endpoints = { ...t.endpoints, 'inbound|9000||': [{ address: '127.0.0.1', port: echoPort }] };
      return t;
    };
    /** Sends `ping`; resolves with what came back before the connection closed. */
    const exchange = (port: number) =>
      new Promise<string>((resolve) => {
        let got = '';
        const c = net.connect(port, '127.0.0.1', () => c.write('ping'));
        c.on('data', (d) => {
          got += d.toString();
          if (got === 'ping') c.end();
        });
        c.on('close', () => resolve(got));
        c.on('error', () => undefined);
      });

    it('authorizes each connection on L4 fields: ports allow, a DENY on an HTTP-only field closes', async () => {
      const probe = net.createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      const port = (probe.address() as net.AddressInfo).port;
      await new Promise<void>((r) => probe.close(() => r()));
      const withPort = (security: InboundSecurity) => {
        const t = tcpTables(security);
        t.listeners[t.listeners.length - 1]!.port = port;
        return t;
      };
      proxy = await startProxy(
        withPort({ policies: [allow('tcp-ok', [{ to: [{ operation: { ports: [String(port)] } }] }])] }),
      );
      expect(await exchange(port)).to.equal('ping');
      const r = await proxy.applyTables(
        withPort({ policies: [allow('tcp-no', [{ to: [{ operation: { ports: ['1'] } }] }])] }),
      );
      expect(r.ok).to.equal(true);
      expect(await exchange(port)).to.equal('');
      await proxy.applyTables(
        withPort({ policies: [allow('no-post', [{ to: [{ operation: { methods: ['POST'] } }] }], 'DENY')] }),
      );
      expect(await exchange(port)).to.equal('');
      await proxy.applyTables(withPort({}));
      expect(await exchange(port)).to.equal('ping');
    });
  });
});
