/**
 * Outlier detection through a real proxy and real upstreams on loopback: consecutive 5xx and
 * gateway-error ejection, return after the ejection time (longer on the second ejection),
 * maxEjectionPercent, connect failures, panic below minHealthPercent, admin views.
 */
import type http from 'node:http';
import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import { DEFAULTS, HostOutlier, OutlierDetector, OutlierStats } from '../../src/proxy/upstream/outlier.js';
import type { Endpoint, OutlierDetection } from '../../src/tables/index.js';
import {
  C1,
  deadPort,
  ep,
  getText,
  outboundPort,
  send,
  startProxy,
  startUpstream,
  tables,
  type Upstream,
} from './helpers.js';
import { eventually } from './tcp-helpers.js';

/** An upstream answering `box.status` (changeable) with its name as body. */
async function upstream(name: string, status: number): Promise<Upstream & { box: { status: number } }> {
  const box = { status };
  const up = await startUpstream(name, (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(box.status, { 'content-type': 'text/plain' });
    res.end(name);
  });
  return Object.assign(up, { box });
}

describe('proxy outlier detection', () => {
  let proxy: SidecarProxy | undefined;
  const ups: Upstream[] = [];

  afterEach(async () => {
    await proxy?.stop(100);
    proxy = undefined;
    await Promise.all(ups.splice(0).map((u) => u.close()));
  });

  async function start(eps: Endpoint[], od: OutlierDetection, lbPolicy = 'ROUND_ROBIN'): Promise<number> {
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: eps });
    t.clusters[0]!.lbPolicy = lbPolicy as 'ROUND_ROBIN';
    t.clusters[0]!.outlierDetection = od;
    proxy = await startProxy(t);
    return outboundPort(proxy);
  }

  async function tally(port: number, n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await send(port);
      const key = r.status === 200 ? r.body : `${r.body}:${r.status}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * Sends requests one by one until `u` is ejected (at most 20); returns what they got and when
   * the ejecting request was sent (no later than the ejection itself).
   */
  async function untilEjected(
    port: number,
    u: Upstream,
  ): Promise<{ counts: Record<string, number>; sentAt: number }> {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const sentAt = performance.now();
      const r = await send(port);
      const key = r.status === 200 ? r.body : `${r.body}:${r.status}`;
      counts[key] = (counts[key] ?? 0) + 1;
      if ((await flags(u)) === '/failed_outlier_check') return { counts, sentAt };
    }
    throw new Error(`${u.port} was not ejected after 20 requests: ${JSON.stringify(counts)}`);
  }

  const clusters = async () => (await getText(proxy!.adminPort, '/clusters')).body;
  const stats = async () => (await getText(proxy!.adminPort, '/stats')).body;
  const flags = async (u: Upstream) =>
    (await clusters()).match(new RegExp(`::127\\.0\\.0\\.1:${u.port}::health_flags::(\\S+)`))?.[1];
  const stat = async (name: string) =>
    Number((await stats()).match(new RegExp(`${name.replace(/[.|]/g, '\\$&')}: (\\d+)`))?.[1] ?? Number.NaN);

  it('applies the Istio defaults when outlierDetection sets no field', () => {
    const d = new OutlierDetector({}, { hosts: [], hostsChanged() {} }, new OutlierStats());
    try {
      expect({
        consecutive5xxErrors: d.c5xx,
        consecutiveGatewayErrors: d.cGateway,
        intervalMs: d.intervalMs,
        baseEjectionTimeMs: d.baseMs,
        maxEjectionPercent: d.maxEjectionPercent,
        minHealthPercent: d.minHealthPercent,
      }).to.deep.equal(DEFAULTS);
      expect(DEFAULTS).to.deep.include({
        consecutive5xxErrors: 5,
        intervalMs: 10_000,
        baseEjectionTimeMs: 30_000,
        maxEjectionPercent: 10,
      });
    } finally {
      d.close();
    }
  });

  it('ejects a host after consecutive 5xx, sends traffic elsewhere, returns it, ejects longer the second time', async function () {
    this.timeout(60_000);
    const good = await upstream('good', 200);
    const bad = await upstream('bad', 500);
    ups.push(good, bad);
    // No assertion depends on how fast this machine is: the ejection time is long against the
    // handful of requests made while the host is out, the interval is long against the few
    // made after its return (the multiplier decays at the first sweep an interval after it),
    // and elapsed times are only lower bounds from a moment before the ejecting request.
    const base = 1500;
    const port = await start([ep(good), ep(bad)], {
      consecutive5xxErrors: 3,
      intervalMs: base,
      baseEjectionTimeMs: base,
      maxEjectionPercent: 100,
    });
    // Round robin: the bad host is ejected on its third 500, within 6 requests.
    const first = await untilEjected(port, bad);
    expect(first.counts).to.have.all.keys('good', 'bad:500');
    expect(first.counts['bad:500']).to.equal(3);
    expect(first.counts.good).to.be.within(2, 3);
    expect(await tally(port, 10)).to.deep.equal({ good: 10 });
    expect(await flags(bad)).to.equal('/failed_outlier_check');
    expect(await flags(good)).to.equal('healthy');
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_enforced_total`)).to.equal(1);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_active`)).to.equal(1);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_enforced_consecutive_5xx`)).to.equal(1);

    await eventually(async () => (await flags(bad)) === 'healthy', 20_000);
    expect(performance.now() - first.sentAt).to.be.at.least(base);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_active`)).to.equal(0);
    // Still failing: ejected again on its next 3 requests, now for 2 x baseEjectionTime.
    const second = await untilEjected(port, bad);
    expect(second.counts['bad:500']).to.equal(3);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_enforced_total`)).to.equal(2);
    await eventually(async () => (await flags(bad)) === 'healthy', 30_000);
    expect(performance.now() - second.sentAt).to.be.at.least(2 * base);
    const prom = (await getText(proxy!.statsPort, '/stats/prometheus')).body;
    expect(prom).to.include(
      `envoy_cluster_outlier_detection_ejections_enforced_total{cluster_name="${C1}"} 2`,
    );
  });

  it('the ejection multiplier grows per ejection and decays one step per sweep once the host is back an interval (Envoy)', () => {
    // The detector on its own; elapsed time is simulated by moving the host's timestamps back.
    const h = new HostOutlier();
    const other = new HostOutlier();
    const d = new OutlierDetector(
      { consecutive5xxErrors: 1, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100 },
      { hosts: [{ outlier: h }, { outlier: other }], hostsChanged() {} },
      new OutlierStats(),
    );
    try {
      d.report(h, 500);
      expect([h.ejected, h.multiplier]).to.deep.equal([true, 1]);
      h.ejectedAtMs -= 29_000;
      d.sweep();
      expect(h.ejected, 'before base x 1').to.equal(true);
      h.ejectedAtMs -= 1_000;
      d.sweep();
      expect([h.ejected, h.multiplier]).to.deep.equal([false, 1]);
      d.sweep(); // back for less than an interval: no decay
      expect(h.multiplier).to.equal(1);
      d.report(h, 500);
      expect([h.ejected, h.multiplier]).to.deep.equal([true, 2]);
      h.ejectedAtMs -= 30_000;
      d.sweep();
      expect(h.ejected, 'the second ejection lasts base x 2').to.equal(true);
      h.ejectedAtMs -= 30_000;
      d.sweep();
      expect([h.ejected, h.multiplier]).to.deep.equal([false, 2]);
      h.lastUnejectedMs -= 10_000;
      d.sweep();
      expect(h.multiplier).to.equal(1);
      d.sweep();
      expect(h.multiplier).to.equal(0);
      d.report(h, 500);
      expect([h.ejected, h.multiplier]).to.deep.equal([true, 1]);
    } finally {
      d.close();
    }
  });

  it('keeps an ejection across a cluster definition change and still returns the host', async function () {
    this.timeout(30_000);
    const good = await upstream('good', 200);
    const bad = await upstream('bad', 500);
    ups.push(good, bad);
    // Long enough that the table change and 6 requests happen while the host is out, however
    // loaded the machine is.
    const od = { consecutive5xxErrors: 2, intervalMs: 20, baseEjectionTimeMs: 2000, maxEjectionPercent: 100 };
    const port = await start([ep(good), ep(bad)], od);
    await tally(port, 4);
    expect(await flags(bad)).to.equal('/failed_outlier_check');
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
      [C1]: [ep(good), ep(bad)],
    });
    Object.assign(t.clusters[0]!, {
      lbPolicy: 'ROUND_ROBIN',
      outlierDetection: { ...od, consecutive5xxErrors: 3 },
    });
    t.version = 'v2';
    expect((await proxy!.applyTables(t)).ok).to.equal(true);
    expect(await flags(bad)).to.equal('/failed_outlier_check');
    expect(await tally(port, 6)).to.deep.equal({ good: 6 });
    await eventually(async () => (await flags(bad)) === 'healthy', 20_000);
  });

  it('a success resets the consecutive count', async () => {
    const flaky = await upstream('flaky', 500);
    ups.push(flaky);
    const port = await start([ep(flaky)], { consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    await tally(port, 2);
    flaky.box.status = 200;
    await tally(port, 1);
    flaky.box.status = 500;
    await tally(port, 2);
    expect(await flags(flaky)).to.equal('healthy');
    await tally(port, 1);
    expect(await flags(flaky)).to.equal('/failed_outlier_check');
  });

  it('never ejects more than maxEjectionPercent of the hosts', async () => {
    for (const n of ['a', 'b', 'c', 'd']) ups.push(await upstream(n, 500));
    const port = await start(
      ups.map((u) => ep(u)),
      { consecutive5xxErrors: 2, maxEjectionPercent: 50, baseEjectionTimeMs: 60_000 },
    );
    const counts = await tally(port, 24);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_active`)).to.equal(2);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_overflow`)).to.be.greaterThan(0);
    expect(await stat(`cluster.${C1}.membership_healthy`)).to.equal(2);
    // Every request still got an upstream answer (the two hosts left).
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).to.equal(24);
  });

  it('the default maxEjectionPercent (10%) ejects nothing from a 2-host cluster (Envoy counts the host being ejected)', async () => {
    const bad = await upstream('bad', 500);
    const good = await upstream('good', 200);
    ups.push(bad, good);
    const port = await start([ep(bad), ep(good)], { consecutive5xxErrors: 2 });
    await tally(port, 10);
    expect(await flags(bad)).to.equal('healthy');
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_overflow`)).to.equal(1);
  });

  it('counts only 502/503/504 and connect failures as gateway errors', async () => {
    const e500 = await upstream('e500', 500);
    const e503 = await upstream('e503', 503);
    const good = await upstream('good', 200);
    ups.push(e500, e503, good);
    const dead = await deadPort();
    const port = await start([ep(e500), ep(e503), ep({ port: dead }), ep(good)], {
      consecutive5xxErrors: 0,
      consecutiveGatewayErrors: 2,
      maxEjectionPercent: 100,
      baseEjectionTimeMs: 60_000,
    });
    await tally(port, 12);
    expect(await flags(e500)).to.equal('healthy');
    expect(await flags(e503)).to.equal('/failed_outlier_check');
    expect(await flags({ port: dead } as Upstream)).to.equal('/failed_outlier_check');
    expect(await flags(good)).to.equal('healthy');
    expect(
      await stat(`cluster.${C1}.outlier_detection.ejections_enforced_consecutive_gateway_failure`),
    ).to.equal(2);
    expect(await stat(`cluster.${C1}.outlier_detection.ejections_enforced_consecutive_5xx`)).to.equal(0);
  });

  it('below minHealthPercent balances over all hosts, ejected ones included (panic)', async () => {
    const bad = await upstream('bad', 500);
    const good = await upstream('good', 200);
    ups.push(bad, good);
    const port = await start([ep(bad), ep(good)], {
      consecutive5xxErrors: 2,
      maxEjectionPercent: 100,
      minHealthPercent: 60,
      baseEjectionTimeMs: 60_000,
    });
    await tally(port, 4);
    expect(await flags(bad)).to.equal('/failed_outlier_check');
    expect(await stat(`cluster.${C1}.lb_healthy_panic`)).to.equal(1);
    const counts = await tally(port, 10);
    expect(counts).to.deep.equal({ 'bad:500': 5, good: 5 });
  });
});
