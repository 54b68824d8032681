import { expect } from 'chai';
import { CaError } from '../../src/ca/errors.js';
import {
  identityFromReview,
  peekJwt,
  TokenAuthenticator,
  type TokenReviewFn,
  type TokenReviewStatus,
} from '../../src/ca/token-review.js';
import { fakeJwt } from './helpers.js';

const SA_USER = {
  username: 'system:serviceaccount:shop:reviews',
  groups: ['system:serviceaccounts', 'system:authenticated'],
};
const OK: TokenReviewStatus = { authenticated: true, audiences: ['istio-ca'], user: SA_USER };

async function caError(p: Promise<unknown>): Promise<CaError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CaError);
    return err as CaError;
  }
  return expect.fail('expected a CaError');
}

describe('ca/token-review', () => {
  describe('identityFromReview', () => {
    it('returns the service account of an authenticated istio-ca token', () => {
      expect(identityFromReview(OK, ['istio-ca'])).to.deep.equal({
        namespace: 'shop',
        serviceAccount: 'reviews',
      });
    });

    it('refuses unauthenticated tokens with the apiserver reason', () => {
      let err: unknown;
      try {
        identityFromReview({ authenticated: false, error: 'token has expired' }, ['istio-ca']);
      } catch (e) {
        err = e;
      }
      expect((err as CaError).code).to.equal('CA_TOKEN_REJECTED');
      expect((err as CaError).status).to.equal(401);
      expect((err as CaError).message).to.match(/token has expired/);
    });

    it('refuses tokens reviewed for another audience', () => {
      expect(() => identityFromReview({ ...OK, audiences: ['api'] }, ['istio-ca']))
        .to.throw(CaError)
        .with.property('code', 'CA_TOKEN_AUDIENCE');
    });

    it('refuses users that are not service accounts', () => {
      expect(() =>
        identityFromReview({ ...OK, user: { username: 'alice', groups: ['system:authenticated'] } }, [
          'istio-ca',
        ]),
      )
        .to.throw(CaError)
        .with.property('code', 'CA_NOT_SERVICE_ACCOUNT');
      expect(() =>
        identityFromReview({ ...OK, user: { username: SA_USER.username, groups: [] } }, ['istio-ca']),
      ).to.throw(CaError);
    });
  });

  it('peekJwt reads aud (string or list) and exp without verifying', () => {
    expect(peekJwt(fakeJwt({ aud: 'istio-ca', exp: 5 }))).to.deep.equal({ aud: ['istio-ca'], exp: 5 });
    expect(peekJwt(fakeJwt({ aud: ['a', 'b'] }))).to.deep.equal({ aud: ['a', 'b'] });
    expect(peekJwt('abc')).to.equal(undefined);
    expect(peekJwt('a.!!!.c')).to.equal(undefined);
  });

  describe('TokenAuthenticator', () => {
    let now = 1_000_000_000_000;
    const exp = () => Math.floor(now / 1000) + 3600;
    const counting = (status: TokenReviewStatus = OK) => {
      const calls: string[][] = [];
      const review: TokenReviewFn = async (_token, audiences) => {
        calls.push(audiences);
        return status;
      };
      return { calls, review };
    };

    it('reviews once and serves a burst from the cache (and concurrent calls share one review)', async () => {
      const { calls, review } = counting();
      const auth = new TokenAuthenticator({ review, now: () => now });
      const token = fakeJwt({ aud: ['istio-ca'], exp: exp() });
      const ids = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate(token)));
      expect(ids.every((i) => i.serviceAccount === 'reviews')).to.equal(true);
      await auth.authenticate(token);
      expect(calls).to.deep.equal([['istio-ca']]);
      expect(auth.stats.reviews).to.equal(1);
      expect(auth.stats.cacheHits).to.equal(1);
    });

    it('reviews again after the cache TTL, and never caches past the token expiry', async () => {
      const { calls, review } = counting();
      const auth = new TokenAuthenticator({ review, now: () => now, cacheTtlMs: 60_000 });
      const token = fakeJwt({ aud: 'istio-ca', exp: exp() });
      await auth.authenticate(token);
      now += 61_000;
      await auth.authenticate(token);
      expect(calls.length).to.equal(2);

      const shortLived = fakeJwt({ aud: 'istio-ca', exp: Math.floor(now / 1000) + 10 });
      await auth.authenticate(shortLived);
      now += 11_000;
      const err = await caError(auth.authenticate(shortLived));
      expect(err.code).to.equal('CA_TOKEN_EXPIRED');
    });

    it('rejects locally, without asking the apiserver, a token for another audience, expired, or not a JWT', async () => {
      const { calls, review } = counting();
      const auth = new TokenAuthenticator({ review, now: () => now });
      const wrong = await caError(
        auth.authenticate(fakeJwt({ aud: ['https://kubernetes.default.svc'], exp: exp() })),
      );
      expect(wrong.code).to.equal('CA_TOKEN_AUDIENCE');
      expect(wrong.message).to.match(/kubernetes\.default\.svc.*istio-ca/);
      const expired = await caError(
        auth.authenticate(fakeJwt({ aud: 'istio-ca', exp: Math.floor(now / 1000) - 1 })),
      );
      expect(expired.code).to.equal('CA_TOKEN_EXPIRED');
      const junk = await caError(auth.authenticate('not-a-jwt'));
      expect(junk.code).to.equal('CA_TOKEN_MALFORMED');
      expect(calls).to.deep.equal([]);
    });

    it('does not cache refusals, and reports an unreachable apiserver as 503', async () => {
      const { calls, review } = counting({ authenticated: false, error: 'invalid bearer token' });
      const auth = new TokenAuthenticator({ review, now: () => now });
      const token = fakeJwt({ aud: 'istio-ca', exp: exp() });
      expect((await caError(auth.authenticate(token))).code).to.equal('CA_TOKEN_REJECTED');
      expect((await caError(auth.authenticate(token))).code).to.equal('CA_TOKEN_REJECTED');
      expect(calls.length).to.equal(2);

      const down = new TokenAuthenticator({
        review: async () => {
          throw Object.assign(new Error('connect ECONNREFUSED'), {});
        },
        now: () => now,
      });
      const err = await caError(down.authenticate(token));
      expect(err.code).to.equal('CA_AUTH_UNAVAILABLE');
      expect(err.status).to.equal(503);
      expect(err.message).to.not.include(token);
    });

    it('bounds the cache', async () => {
      const { review } = counting();
      const auth = new TokenAuthenticator({ review, now: () => now, maxEntries: 3 });
      for (let i = 0; i < 10; i++) await auth.authenticate(fakeJwt({ aud: 'istio-ca', exp: exp(), n: i }));
      expect((auth as unknown as { cache: Map<string, unknown> }).cache.size).to.be.at.most(3);
    });
  });
});
