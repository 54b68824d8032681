/**
 * RequestAuthentication: tokens signed with keys generated per run (never stored), verified
 * against inline JWKS and against a jwksUri served by real local HTTP/HTTPS servers.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import {
  AuthzEngine,
  applyJwtHeaders,
  JWT_REASONS,
  type JwtOutcome,
  RequestAuthenticator,
  wwwAuthenticate,
} from '../../src/authz/index.js';
import { createSelfSignedCa, issueLeaf } from '../../src/ca/x509.js';
import type { JwtRule } from '../../src/tables/security.js';
import { allow, request } from './helpers.js';

const ISS = 'https://issuer.example';

interface Signer {
  kid: string;
  jwk: JWK;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
}

async function signer(kid: string, alg: 'RS256' | 'ES256' = 'ES256'): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, jwk, privateKey };
}

async function token(
  s: Signer,
  claims: Record<string, unknown> = {},
  opts: { exp?: number; iss?: string; aud?: string | string[]; nbf?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: s.jwk.alg!, kid: s.kid })
    .setIssuer(opts.iss ?? ISS)
    .setIssuedAt(now - 10)
    .setExpirationTime(opts.exp ?? now + 3600);
  if (opts.aud) jwt.setAudience(opts.aud);
  if (opts.nbf) jwt.setNotBefore(opts.nbf);
  return jwt.sign(s.privateKey);
}

const jwks = (...ss: Signer[]) => JSON.stringify({ keys: ss.map((s) => s.jwk) });

async function run(auth: RequestAuthenticator, headers: string[], target = '/'): Promise<JwtOutcome> {
  return auth.authenticate(headers, target);
}

describe('authz/jwt: RequestAuthentication with inline jwks', () => {
  let a: Signer;
  let b: Signer;
  before(async () => {
    a = await signer('key-a');
    b = await signer('key-b', 'RS256');
  });

  const rule = (over: Partial<JwtRule> = {}): JwtRule => ({ issuer: ISS, jwks: jwks(a, b), ...over });

  it('a valid token: principal <iss>/<sub>, claims, token header stripped by default', async () => {
    const auth = new RequestAuthenticator([rule()], { cacheSize: 0 });
    const t = await token(a, { groups: ['eng'] });
    const o = await run(auth, ['Host', 'x', 'Authorization', `Bearer ${t}`]);
    expect(o.status).to.equal('ok');
    expect(o.principal).to.equal(`${ISS}/alice`);
    expect(o.claims?.groups).to.deep.equal(['eng']);
    expect(o.removeHeaders).to.include('authorization');
    expect(applyJwtHeaders(['Host', 'x', 'Authorization', `Bearer ${t}`], o)).to.deep.equal(['Host', 'x']);
    // RSA keys of the same set work too
    expect((await run(auth, ['authorization', `Bearer ${await token(b)}`])).status).to.equal('ok');
  });

  it('forwardOriginalToken keeps the header; outputs payload and claims to headers', async () => {
    const auth = new RequestAuthenticator(
      [
        rule({
          forwardOriginalToken: true,
          outputPayloadToHeader: 'x-jwt-payload',
          outputClaimToHeaders: [
            { header: 'x-sub', claim: 'sub' },
            { header: 'x-level', claim: 'level' },
            { header: 'x-team', claim: 'org.team' },
            { header: 'x-groups', claim: 'groups' },
          ],
        }),
      ],
      { cacheSize: 0 },
    );
    const t = await token(a, { level: 3, org: { team: 'core' }, groups: ['x'] });
    const incoming = ['authorization', `Bearer ${t}`, 'x-sub', 'forged', 'x-jwt-payload', 'forged'];
    const o = await run(auth, incoming);
    expect(o.status).to.equal('ok');
    const out = applyJwtHeaders(incoming, o);
    const get = (n: string) => out[out.indexOf(n) + 1];
    expect(get('authorization')).to.equal(`Bearer ${t}`);
    expect(get('x-sub')).to.equal('alice');
    expect(get('x-level')).to.equal('3');
    expect(get('x-team')).to.equal('core');
    expect(out).to.not.include('x-groups');
    expect(out.filter((h) => h === 'x-sub')).to.have.length(1);
    const payload = JSON.parse(Buffer.from(get('x-jwt-payload')!, 'base64url').toString());
    expect(payload.sub).to.equal('alice');
    expect(payload.iss).to.equal(ISS);
  });

  it('no token: passes unauthenticated, synchronously; forged output headers are still removed', () => {
    const auth = new RequestAuthenticator([rule({ outputPayloadToHeader: 'x-jwt-payload' })]);
    const o = auth.authenticate(['host', 'x', 'x-jwt-payload', 'forged'], '/');
    expect(o).to.not.be.instanceOf(Promise);
    expect((o as JwtOutcome).status).to.equal('none');
    expect(applyJwtHeaders(['host', 'x', 'x-jwt-payload', 'forged'], o as JwtOutcome)).to.deep.equal([
      'host',
      'x',
    ]);
  });

  const failures: [string, () => Promise<string[]>, string][] = [
    [
      'expired',
      async () => ['authorization', `Bearer ${await token(a, {}, { exp: 1_000_000 })}`],
      JWT_REASONS.expired,
    ],
    [
      'not yet valid',
      async () => [
        'authorization',
        `Bearer ${await token(a, {}, { nbf: Math.floor(Date.now() / 1000) + 3600 })}`,
      ],
      JWT_REASONS.notYetValid,
    ],
    [
      'bad signature (signed by another key claiming kid key-a)',
      async () => {
        const evil = await signer('key-a');
        return ['authorization', `Bearer ${await token(evil)}`];
      },
      JWT_REASONS.signature,
    ],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await token(a)).split('.');
        const p = Buffer.from(JSON.stringify({ iss: ISS, sub: 'admin' })).toString('base64url');
        return ['authorization', `Bearer ${h}.${p}.${s}`];
      },
      JWT_REASONS.signature,
    ],
    [
      'wrong issuer',
      async () => ['authorization', `Bearer ${await token(a, {}, { iss: 'https://evil' })}`],
      JWT_REASONS.issuer,
    ],
    ['malformed', async () => ['authorization', 'Bearer not-a-jwt'], JWT_REASONS.malformed],
    [
      'unknown kid',
      async () => {
        const c = await signer('key-c');
        return ['authorization', `Bearer ${await token(c)}`];
      },
      JWT_REASONS.noKey,
    ],
  ];
  for (const [name, headers, reason] of failures) {
    it(`401 for ${name}: "${reason}"`, async () => {
      const auth = new RequestAuthenticator([rule()], { cacheSize: 0 });
      const o = await run(auth, await headers());
      expect(o.status).to.equal('invalid');
      expect(o.reason).to.equal(reason);
      expect(o.principal).to.equal('');
    });
  }

  it('audiences: any listed audience is accepted, others refused', async () => {
    const auth = new RequestAuthenticator([rule({ audiences: ['api', 'web'] })], { cacheSize: 0 });
    expect(
      (await run(auth, ['authorization', `Bearer ${await token(a, {}, { aud: ['x', 'web'] })}`])).status,
    ).to.equal('ok');
    const o = await run(auth, ['authorization', `Bearer ${await token(a, {}, { aud: 'other' })}`]);
    expect(o.reason).to.equal(JWT_REASONS.audience);
    expect((await run(auth, ['authorization', `Bearer ${await token(a)}`])).reason).to.equal(
      JWT_REASONS.audience,
    );
  });

  it('locations: default access_token param; fromHeaders with prefix; fromCookies; explicit ones replace defaults', async () => {
    const t = await token(a);
    const def = new RequestAuthenticator([rule()], { cacheSize: 0 });
    expect((await run(def, [], `/x?access_token=${t}&b=1`)).status).to.equal('ok');
    expect((await run(def, ['x-token', t], '/')).status).to.equal('none');

    const custom = new RequestAuthenticator(
      [
        rule({
          fromHeaders: [{ name: 'X-Token', prefix: 'JWT ' }],
          fromCookies: ['session'],
          fromParams: ['tok'],
        }),
      ],
      { cacheSize: 0 },
    );
    let o = await run(custom, ['x-token', `JWT ${t}`]);
    expect(o.status).to.equal('ok');
    expect(o.removeHeaders).to.include('x-token');
    expect((await run(custom, ['cookie', `a=b; session=${t}; c=d`])).status).to.equal('ok');
    expect((await run(custom, [], `/p?tok=${t}`)).status).to.equal('ok');
    expect((await run(custom, ['authorization', `Bearer ${t}`])).status).to.equal('none');
    // a header without the configured prefix is not a token location
    expect((await run(custom, ['x-token', t])).status).to.equal('none');
    o = await run(custom, ['x-token', 'JWT garbage']);
    expect(o.status).to.equal('invalid');
  });

  it('several issuers: each token is checked by the rule of its issuer', async () => {
    const other = await signer('other-1');
    const auth = new RequestAuthenticator([rule(), { issuer: 'https://other', jwks: jwks(other) }], {
      cacheSize: 0,
    });
    expect(
      (await run(auth, ['authorization', `Bearer ${await token(other, {}, { iss: 'https://other' })}`]))
        .principal,
    ).to.equal('https://other/alice');
    // issuer B's token signed with A's key is refused
    const o = await run(auth, ['authorization', `Bearer ${await token(a, {}, { iss: 'https://other' })}`]);
    expect(o.status).to.equal('invalid');
  });

  it('verified tokens are cached until they expire', async () => {
    const auth = new RequestAuthenticator([rule()], { cacheSize: 10 });
    const t = await token(a);
    const o1 = await run(auth, ['authorization', `Bearer ${t}`]);
    const o2 = await run(auth, ['authorization', `Bearer ${t}`]);
    expect(o2.claims).to.equal(o1.claims);
  });

  it('with the authorization engine: missing token passes unless requestPrincipals is required', async () => {
    const auth = new RequestAuthenticator([rule()], { cacheSize: 0 });
    const requireJwt = AuthzEngine.compile([allow([{ from: [{ source: { requestPrincipals: ['*'] } }] }])]);
    const open = AuthzEngine.compile([]);
    const anon = await run(auth, []);
    expect(anon.status).to.equal('none');
    const attrs = request({ requestPrincipal: anon.principal });
    expect(open.authorize(attrs).allowed).to.equal(true);
    expect(requireJwt.authorize(attrs).allowed).to.equal(false);
    const ok = await run(auth, ['authorization', `Bearer ${await token(a)}`]);
    attrs.requestPrincipal = ok.principal;
    attrs.claims = ok.claims;
    expect(requireJwt.authorize(attrs).allowed).to.equal(true);
    expect(wwwAuthenticate('http://h/p')).to.equal('Bearer realm="http://h/p", error="invalid_token"');
  });
});

interface KeyServer {
  uri: string;
  body: string;
  status: number;
  hits: number;
  hang: boolean;
  server: Server;
}

async function keyServer(https?: { cert: string; key: string }): Promise<KeyServer> {
  const ks = { body: '', status: 200, hits: 0, hang: false } as KeyServer;
  const handler = (_req: unknown, res: import('node:http').ServerResponse) => {
    ks.hits++;
    if (ks.hang) return;
    res.writeHead(ks.status, { 'content-type': 'application/json' });
    res.end(ks.body);
  };
  ks.server = https ? createHttpsServer(https, handler) : createHttpServer(handler);
  await new Promise<void>((r) => ks.server.listen(0, '127.0.0.1', r));
  const { port } = ks.server.address() as AddressInfo;
  ks.uri = `${https ? 'https' : 'http'}://127.0.0.1:${port}/jwks.json`;
  return ks;
}

function stop(ks: KeyServer): Promise<void> {
  ks.server.closeAllConnections();
  return new Promise((r) => ks.server.close(() => r()));
}

describe('authz/jwt: jwksUri on a local server', () => {
  let a: Signer;
  let b: Signer;
  let ks: KeyServer;
  before(async () => {
    a = await signer('rot-a');
    b = await signer('rot-b');
  });
  beforeEach(async () => {
    ks = await keyServer();
  });
  afterEach(() => stop(ks));

  it('fetches once, caches, and refetches on an unknown kid (key rotation)', async () => {
    ks.body = jwks(a);
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], {
      cacheSize: 0,
      cooldownMs: 0,
    });
    try {
      expect((await run(auth, ['authorization', `Bearer ${await token(a)}`])).status).to.equal('ok');
      expect((await run(auth, ['authorization', `Bearer ${await token(a)}`])).status).to.equal('ok');
      expect(ks.hits).to.equal(1);
      ks.body = jwks(a, b); // the issuer publishes a new key
      const o = await run(auth, ['authorization', `Bearer ${await token(b)}`]);
      expect(o.status).to.equal('ok');
      expect(ks.hits).to.equal(2);
      ks.body = jwks(b); // old key retired
      const c = await signer('rot-c');
      expect((await run(auth, ['authorization', `Bearer ${await token(c)}`])).reason).to.equal(
        JWT_REASONS.noKey,
      );
      expect(ks.hits).to.equal(3);
    } finally {
      auth.close();
    }
  });

  it('unknown-kid refetches are rate-limited by the cooldown', async () => {
    ks.body = jwks(a);
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], {
      cacheSize: 0,
      cooldownMs: 60_000,
    });
    try {
      await run(auth, ['authorization', `Bearer ${await token(a)}`]);
      for (let i = 0; i < 3; i++) await run(auth, ['authorization', `Bearer ${await token(b)}`]);
      expect(ks.hits).to.equal(1);
    } finally {
      auth.close();
    }
  });

  it('keeps the last good key set when a refresh fails (stale while error)', async () => {
    ks.body = jwks(a);
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], {
      cacheSize: 0,
      cooldownMs: 0,
    });
    try {
      expect((await run(auth, ['authorization', `Bearer ${await token(a)}`])).status).to.equal('ok');
      ks.status = 500;
      const remote = auth.remoteKeySets().get(ks.uri)!;
      await remote.refresh();
      expect(remote.lastError?.message).to.match(/HTTP 500/);
      expect((await run(auth, ['authorization', `Bearer ${await token(a)}`])).status).to.equal('ok');
    } finally {
      auth.close();
    }
  });

  it('refreshes periodically on a timer', async () => {
    ks.body = jwks(a);
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], {
      cacheSize: 0,
      refreshMs: 50,
    });
    try {
      await run(auth, ['authorization', `Bearer ${await token(a)}`]);
      await new Promise((r) => setTimeout(r, 180));
      expect(ks.hits).to.be.greaterThan(2);
    } finally {
      auth.close();
    }
  });

  it('a key set that was never fetched fails verification: 401 "Jwks remote fetch is failed"', async () => {
    ks.status = 503;
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], { cacheSize: 0 });
    try {
      const o = await run(auth, ['authorization', `Bearer ${await token(a)}`]);
      expect(o.status).to.equal('invalid');
      expect(o.reason).to.equal(JWT_REASONS.fetch);
    } finally {
      auth.close();
    }
  });

  it('gives up on a hanging key server after the rule timeout', async () => {
    ks.hang = true;
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri, timeoutMs: 100 }], {
      cacheSize: 0,
    });
    try {
      const t0 = performance.now();
      const o = await run(auth, ['authorization', `Bearer ${await token(a)}`]);
      expect(o.reason).to.equal(JWT_REASONS.fetch);
      expect(performance.now() - t0).to.be.lessThan(2000);
    } finally {
      auth.close();
    }
  });
});

describe('authz/jwt: jwksUri over HTTPS', function () {
  this.timeout(30_000);
  it('verifies against keys served over TLS with a private CA', async () => {
    const ca = createSelfSignedCa({ commonName: 'jwks test ca', validityDays: 1 });
    const leaf = issueLeaf(ca, { names: ['127.0.0.1'], validityHours: 1 });
    const ks = await keyServer({ cert: leaf.certPem, key: leaf.keyPem! });
    const s = await signer('tls-1');
    ks.body = jwks(s);
    const auth = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], {
      cacheSize: 0,
      ca: ca.certPem,
    });
    const untrusting = new RequestAuthenticator([{ issuer: ISS, jwksUri: ks.uri }], { cacheSize: 0 });
    try {
      expect((await run(auth, ['authorization', `Bearer ${await token(s)}`])).status).to.equal('ok');
      expect((await run(untrusting, ['authorization', `Bearer ${await token(s)}`])).reason).to.equal(
        JWT_REASONS.fetch,
      );
    } finally {
      auth.close();
      untrusting.close();
      await stop(ks);
    }
  });
});
