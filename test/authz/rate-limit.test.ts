import { expect } from 'chai';
import {
  LocalRateLimiter,
  parseRateLimit,
  RateLimitDecision,
  rateLimitFromAnnotations,
  rateLimitHeaders,
} from '../../src/authz/index.js';

function fakeClock(start = 1000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('authz/rate-limit: token bucket', () => {
  it('allows a burst of maxTokens, then answers limited until the next fill', () => {
    const clock = fakeClock();
    const rl = new LocalRateLimiter(
      { workload: { maxTokens: 3, tokensPerFill: 1, fillIntervalMs: 1000 } },
      clock.now,
    );
    const d = new RateLimitDecision();
    const results = [0, 1, 2, 3].map(() => rl.check('', d).limited);
    expect(results).to.deep.equal([false, false, false, true]);
    expect(d.limit).to.equal(3);
    expect(d.remaining).to.equal(0);
    expect(d.resetSeconds).to.equal(1);
    clock.t += 999;
    expect(rl.check('', d).limited).to.equal(true);
    clock.t += 1;
    expect(rl.check('', d).limited).to.equal(false);
    expect(rl.check('', d).limited).to.equal(true);
  });

  it('refills lazily by whole intervals, capped at maxTokens', () => {
    const clock = fakeClock();
    const rl = new LocalRateLimiter(
      { workload: { maxTokens: 10, tokensPerFill: 2, fillIntervalMs: 100 } },
      clock.now,
    );
    const d = new RateLimitDecision();
    for (let i = 0; i < 10; i++) expect(rl.check('', d).limited).to.equal(false);
    expect(rl.check('', d).limited).to.equal(true);
    clock.t += 250; // two fills -> 4 tokens
    let ok = 0;
    while (!rl.check('', d).limited) ok++;
    expect(ok).to.equal(4);
    clock.t += 60_000; // long idle: full bucket, not more
    ok = 0;
    while (!rl.check('', d).limited) ok++;
    expect(ok).to.equal(10);
  });

  it('a route with its own bucket uses it instead of the workload bucket', () => {
    const clock = fakeClock();
    const rl = new LocalRateLimiter(
      {
        workload: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1000 },
        routes: { search: { maxTokens: 2, tokensPerFill: 2, fillIntervalMs: 1000 } },
      },
      clock.now,
    );
    const d = new RateLimitDecision();
    expect(rl.check('search', d).limited).to.equal(false);
    expect(d.scope).to.equal('route');
    expect(rl.check('search', d).limited).to.equal(false);
    expect(rl.check('search', d).limited).to.equal(true);
    expect(rl.check('other', d).limited).to.equal(false);
    expect(d.scope).to.equal('workload');
    expect(rl.check('', d).limited).to.equal(true);
  });

  it('no bucket: not applied, no headers', () => {
    const rl = new LocalRateLimiter(undefined);
    expect(rl.empty).to.equal(true);
    const d = rl.check('x');
    expect(d.applied).to.equal(false);
    expect(rateLimitHeaders(d)).to.deep.equal([]);
  });

  it('keeps bucket state across config updates with the same settings', () => {
    const clock = fakeClock();
    const s = { workload: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 1000 } };
    const rl = new LocalRateLimiter(s, clock.now);
    expect(rl.check('').limited).to.equal(false);
    rl.update({ workload: { ...s.workload } });
    expect(rl.check('').limited).to.equal(true);
    rl.update({ workload: { maxTokens: 5, tokensPerFill: 1, fillIntervalMs: 1000 } });
    expect(rl.check('').limited).to.equal(false);
  });

  it('headers: x-ratelimit-limit/remaining/reset, and x-envoy-ratelimited on 429', () => {
    const clock = fakeClock();
    const rl = new LocalRateLimiter(
      { workload: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 2500 } },
      clock.now,
    );
    expect(rateLimitHeaders(rl.check(''))).to.deep.equal([
      'x-ratelimit-limit',
      '1',
      'x-ratelimit-remaining',
      '0',
      'x-ratelimit-reset',
      '3',
    ]);
    clock.t += 1000;
    const h = rateLimitHeaders(rl.check(''));
    expect(h.slice(-2)).to.deep.equal(['x-envoy-ratelimited', 'true']);
    expect(h[5]).to.equal('2');
  });
});

describe('authz/rate-limit-config: annotations', () => {
  it('parses <tokens>/<interval>[,burst=<n>]', () => {
    expect(parseRateLimit('100/s')).to.deep.equal({
      maxTokens: 100,
      tokensPerFill: 100,
      fillIntervalMs: 1000,
    });
    expect(parseRateLimit('600/1m,burst=50')).to.deep.equal({
      maxTokens: 50,
      tokensPerFill: 600,
      fillIntervalMs: 60_000,
    });
    expect(parseRateLimit(' 5 / 500ms ')).to.deep.equal({
      maxTokens: 5,
      tokensPerFill: 5,
      fillIntervalMs: 500,
    });
    expect(parseRateLimit('10/h')).to.deep.equal({
      maxTokens: 10,
      tokensPerFill: 10,
      fillIntervalMs: 3_600_000,
    });
    for (const bad of ['100', '0/s', '10/x', '10/s,burst=0', 'ten/s', '10/1.5ms'])
      expect(parseRateLimit(bad), bad).to.be.a('string');
  });

  it('reads the workload and route annotations, reporting bad entries', () => {
    const r = rateLimitFromAnnotations({
      'isthmus.io/local-rate-limit': '100/s',
      'isthmus.io/local-rate-limit-routes': 'reviews-v2=10/s; ratings=5/1s,burst=20; broken; bad=1/q',
    });
    expect(r.settings).to.deep.equal({
      workload: { maxTokens: 100, tokensPerFill: 100, fillIntervalMs: 1000 },
      routes: {
        'reviews-v2': { maxTokens: 10, tokensPerFill: 10, fillIntervalMs: 1000 },
        ratings: { maxTokens: 20, tokensPerFill: 5, fillIntervalMs: 1000 },
      },
    });
    expect(r.errors).to.have.length(2);
    expect(rateLimitFromAnnotations({}).settings).to.equal(undefined);
  });
});
