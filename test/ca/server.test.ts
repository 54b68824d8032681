import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { MeshCa } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { createCsr, generateWorkloadKey } from '../../src/ca/csr.js';
import { type CaServer, startCaServer } from '../../src/ca/server.js';
import { TokenAuthenticator, type TokenReviewFn } from '../../src/ca/token-review.js';
import { createLogger } from '../../src/util/log.js';
import { fakeJwt, postCsr, postRaw } from './helpers.js';

const quiet = createLogger('ca-test');
quiet.silent = true;

/** A TokenReview stand-in: tokens are "valid" when their `sub` names a service account. */
const review: TokenReviewFn = async (token) => {
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub?: string };
  if (!claims.sub?.startsWith('system:serviceaccount:'))
    return { authenticated: false, error: 'invalid bearer token' };
  return {
    authenticated: true,
    audiences: ['istio-ca'],
    user: { username: claims.sub, groups: ['system:serviceaccounts'] },
  };
};

const token = (sub: string, aud: string | string[] = 'istio-ca') =>
  fakeJwt({ sub, aud, exp: Math.floor(Date.now() / 1000) + 3600 });

describe('ca/server (HTTPS, fake TokenReview)', () => {
  let server: CaServer;
  let root: string;

  before(async () => {
    const ca = new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
      trustDomain: 'cluster.local',
      maxTtlSeconds: 7 * 86400,
    });
    root = ca.rootCertPem;
    server = await startCaServer({
      ca,
      authenticator: new TokenAuthenticator({ review }),
      port: 0,
      host: '127.0.0.1',
      servingNames: ['isthmus-controller.istio-system.svc', '127.0.0.1'],
      maxBodyBytes: 16 * 1024,
      log: quiet,
    });
  });
  after(() => server.close());

  it('issues a certificate for the token identity over TLS verified by the mesh root', async () => {
    const key = await generateWorkloadKey();
    const res = await postCsr(server.port, root, token('system:serviceaccount:shop:reviews'), {
      csr: createCsr(key, { uris: ['spiffe://cluster.local/ns/kube-system/sa/admin'] }),
      validitySeconds: 3600,
    });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    const chain = res.body.certChain as string[];
    expect(chain).to.have.length(1);
    expect(res.body.rootCert).to.equal(root);
    const leaf = new X509Certificate(chain[0]!);
    expect(leaf.subjectAltName).to.equal('URI:spiffe://cluster.local/ns/shop/sa/reviews');
    expect(leaf.checkPrivateKey(key)).to.equal(true);
  });

  const cases: Array<
    [string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, string, RegExp?]
  > = [
    [
      'no Authorization header',
      async () => postCsr(server.port, root, undefined, { csr: 'x' }),
      401,
      'CA_NO_TOKEN',
    ],
    [
      'a token for another audience',
      async () => postCsr(server.port, root, token('system:serviceaccount:a:b', 'api'), { csr: 'x' }),
      401,
      'CA_TOKEN_AUDIENCE',
      /istio-ca/,
    ],
    [
      'an expired token',
      async () =>
        postCsr(server.port, root, fakeJwt({ sub: 'system:serviceaccount:a:b', aud: 'istio-ca', exp: 1 }), {
          csr: 'x',
        }),
      401,
      'CA_TOKEN_EXPIRED',
    ],
    [
      'a token the apiserver refuses',
      async () => postCsr(server.port, root, token('alice'), { csr: 'x' }),
      401,
      'CA_TOKEN_REJECTED',
      /invalid bearer token/,
    ],
    [
      'a body that is not JSON',
      async () =>
        postRaw(server.port, root, '{nope', {
          authorization: `Bearer ${token('system:serviceaccount:a:b')}`,
        }),
      400,
      'CA_BAD_REQUEST',
      /not valid JSON/,
    ],
    [
      'a missing csr field',
      async () => postCsr(server.port, root, token('system:serviceaccount:a:b'), { validitySeconds: 5 }),
      400,
      'CA_BAD_REQUEST',
      /"csr"/,
    ],
    [
      'a malformed CSR',
      async () => postCsr(server.port, root, token('system:serviceaccount:a:b'), { csr: 'hello' }),
      400,
      'CA_CSR_MALFORMED',
    ],
    [
      'a lifetime above the maximum',
      async () =>
        postCsr(server.port, root, token('system:serviceaccount:a:b'), {
          csr: createCsr(await generateWorkloadKey()),
          validitySeconds: 30 * 86400,
        }),
      400,
      'CA_TTL_INVALID',
      /maximum/,
    ],
    [
      'a body above the limit',
      async () =>
        postCsr(server.port, root, token('system:serviceaccount:a:b'), { csr: 'A'.repeat(32 * 1024) }),
      413,
      'CA_BODY_TOO_LARGE',
      /limit/,
    ],
    ['another path', async () => postRaw(server.port, root, '', {}, '/v1/other'), 404, 'CA_NOT_FOUND'],
    [
      'GET',
      async () => postRaw(server.port, root, '', {}, '/v1/certificates', 'GET'),
      405,
      'CA_METHOD_NOT_ALLOWED',
    ],
  ];
  for (const [what, call, status, code, message] of cases) {
    it(`answers ${status} ${code} to ${what}`, async () => {
      const res = await call();
      expect(res.status, JSON.stringify(res.body)).to.equal(status);
      const error = res.body.error as { code: string; message: string };
      expect(error.code).to.equal(code);
      if (message) expect(error.message).to.match(message);
    });
  }

  it('serves /healthz and counts outcomes', async () => {
    const res = await postRaw(server.port, root, '', {}, '/healthz', 'GET');
    expect(res.status).to.equal(200);
    expect(server.stats.issued).to.be.at.least(1);
    expect(server.stats.rejected).to.be.at.least(cases.length - 2);
  });
});
