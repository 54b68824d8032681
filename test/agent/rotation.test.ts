import { expect } from 'chai';
import { backoffDelayMs, rotationDelayMs } from '../../src/agent/rotation.js';

describe('agent/rotation', () => {
  const base = {
    receivedAtMs: 1_000_000,
    notAfterMs: 1_000_000 + 86_400_000,
    nowMs: 1_000_000,
    ratio: 0.8,
    jitter: 0.05,
  };

  it('renews at 80% of the lifetime without jitter', () => {
    expect(rotationDelayMs({ ...base, random: 0 })).to.equal(0.8 * 86_400_000);
  });

  it('jitter only moves renewal earlier, down to ratio - jitter', () => {
    const early = rotationDelayMs({ ...base, random: 0.999999 });
    expect(early).to.be.within(0.75 * 86_400_000, 0.8 * 86_400_000);
    const spread = new Set(
      Array.from({ length: 50 }, (_, i) => rotationDelayMs({ ...base, random: i / 50 })),
    );
    expect(spread.size).to.equal(50);
  });

  it('counts from arrival, not from the (back-dated) notBefore, and from now', () => {
    const fourSeconds = { receivedAtMs: 0, notAfterMs: 4000, ratio: 0.8, jitter: 0.05, random: 0 };
    expect(rotationDelayMs({ ...fourSeconds, nowMs: 0 })).to.equal(3200);
    expect(rotationDelayMs({ ...fourSeconds, nowMs: 1000 })).to.equal(2200);
  });

  it('is never negative (already past the renewal point or expired)', () => {
    expect(rotationDelayMs({ ...base, nowMs: base.notAfterMs + 5000, random: 0.5 })).to.equal(0);
    expect(rotationDelayMs({ ...base, notAfterMs: base.receivedAtMs - 1, random: 0 })).to.equal(0);
  });

  it('backs off exponentially with equal jitter, capped', () => {
    expect(backoffDelayMs(1, 1000, 30_000, 0)).to.equal(500);
    expect(backoffDelayMs(1, 1000, 30_000, 1)).to.equal(1000);
    expect(backoffDelayMs(3, 1000, 30_000, 1)).to.equal(4000);
    expect(backoffDelayMs(20, 1000, 30_000, 0.5)).to.equal(22_500);
    expect(backoffDelayMs(1000, 1000, 30_000, 1)).to.equal(30_000);
  });
});
