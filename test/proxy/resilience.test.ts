import { expect } from 'chai';
import { backoffMs } from '../../src/proxy/http/retry.js';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { Cluster, Route } from '../../src/tables/index.js';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Upstream whose answer is scripted per request number (1-based). */
async function scripted(
  script: (n: number, res: import('node:http').ServerResponse) => void,
): Promise<Upstream> {
  let n = 0;
  return startUpstream('scripted', (_req, res) => script(++n, res));
}

function reply(res: import('node:http').ServerResponse, status: number, body = `s${status}`): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(body);
}

describe('proxy resilience: timeouts, retries, faults, circuit breaking', () => {
  let up: Upstream | undefined;
  let proxy: SidecarProxy | undefined;

  afterEach(async () => {
    await proxy?.stop(100);
    await up?.close();
    proxy = undefined;
    up = undefined;
  });

  async function run(
    route: Route,
    cluster: Partial<Cluster> = {},
    eps = up ? [ep(up)] : [],
  ): Promise<number> {
    const t = tables([route], { [C1]: eps });
    Object.assign(t.clusters[0]!, cluster);
    proxy = await startProxy(t);
    return outboundPort(proxy);
  }

  const fwd = (extra: Partial<NonNullable<Route['forward']>> = {}): Route => ({
    forward: { clusters: [{ cluster: C1, weight: 1 }], ...extra },
  });

  it('answers 504 UT "upstream request timeout" when the route timeout expires', async () => {
    up = await scripted((_n, res) => setTimeout(() => reply(res, 200), 1000));
    const port = await run(fwd({ timeoutMs: 150 }));
    const r = await send(port);
    expect(r.status).to.equal(504);
    expect(r.body).to.equal('upstream request timeout');
    expect(r.ms).to.be.within(140, 900);
  });

  it('retries 5xx responses and returns the first success', async () => {
    up = await scripted((n, res) => reply(res, n <= 2 ? 503 : 200));
    const port = await run(fwd({ retries: { attempts: 3, retryOn: ['5xx'], backoffBaseMs: 5 } }));
    const r = await send(port);
    expect(r.status).to.equal(200);
    expect(up.seen.length).to.equal(3);
  });

  it('returns the last response with URX when retries are exhausted', async () => {
    up = await scripted((_n, res) => reply(res, 503));
    const port = await run(fwd({ retries: { attempts: 2, retryOn: ['gateway-error'], backoffBaseMs: 5 } }));
    const r = await send(port);
    expect(r.status).to.equal(503);
    expect(up.seen.length).to.equal(3);
    expect(proxy!.prometheus()).to.match(
      /istio_requests_total\{[^}]*response_code="503",response_flags="URX"\} 1/,
    );
  });

  it('does not retry statuses outside retryOn (gateway-error vs 500)', async () => {
    up = await scripted((_n, res) => reply(res, 500));
    const port = await run(fwd({ retries: { attempts: 3, retryOn: ['gateway-error'], backoffBaseMs: 5 } }));
    expect((await send(port)).status).to.equal(500);
    expect(up.seen.length).to.equal(1);
  });

  it('retries retriable-status-codes (429)', async () => {
    up = await scripted((n, res) => reply(res, n === 1 ? 429 : 200));
    const port = await run(
      fwd({
        retries: {
          attempts: 1,
          retryOn: ['retriable-status-codes'],
          retriableStatusCodes: [429],
          backoffBaseMs: 5,
        },
      }),
    );
    expect((await send(port)).status).to.equal(200);
    expect(up.seen.length).to.equal(2);
  });

  it('answers 503 UF on connect failure, and retries it with connect-failure onto a live host', async () => {
    up = await startUpstream('live');
    const dead = await deadPort();
    let port = await run(fwd(), {}, [ep({ port: dead })]);
    const r = await send(port);
    expect(r.status).to.equal(503);
    expect(r.body).to.contain('reset reason: connection failure');
    await proxy!.stop(100);
    port = await run(fwd({ retries: { attempts: 2, retryOn: ['connect-failure'], backoffBaseMs: 1 } }), {}, [
      ep({ port: dead }),
      ep(up),
    ]);
    for (let i = 0; i < 6; i++) expect((await send(port)).status).to.equal(200);
  });

  it('retries an upstream reset with retryOn reset', async () => {
    up = await startUpstream('reset', (req, res) => {
      if (up!.seen.length === 1) req.socket.destroy();
      else reply(res, 200, 'after-reset');
    });
    const port = await run(fwd({ retries: { attempts: 1, retryOn: ['reset'], backoffBaseMs: 1 } }));
    const r = await send(port);
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('after-reset');
  });

  it('perTryTimeout abandons a slow try and retries', async () => {
    up = await scripted((n, res) => setTimeout(() => reply(res, 200, `try${n}`), n === 1 ? 1000 : 0));
    const port = await run(
      fwd({ retries: { attempts: 2, retryOn: ['5xx'], perTryTimeoutMs: 100, backoffBaseMs: 1 } }),
    );
    const r = await send(port);
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('try2');
    expect(r.ms).to.be.below(900);
  });

  it('the route timeout bounds all tries together', async () => {
    up = await scripted((_n, res) => setTimeout(() => reply(res, 200), 2000));
    const port = await run(
      fwd({
        timeoutMs: 250,
        retries: { attempts: 10, retryOn: ['5xx'], perTryTimeoutMs: 100, backoffBaseMs: 1 },
      }),
    );
    const r = await send(port);
    expect(r.status).to.equal(504);
    expect(r.ms).to.be.within(240, 1500);
  });

  it('retries a small buffered POST body intact, never a streamed one', async () => {
    up = await scripted((_n, res) => reply(res, 503));
    const port = await run(fwd({ retries: { attempts: 1, retryOn: ['5xx'], backoffBaseMs: 1 } }));
    await send(port, { method: 'POST', body: 'payload' });
    expect(up.seen.map((s) => s.body)).to.deep.equal(['payload', 'payload']);
    const big = 'y'.repeat(100 * 1024);
    const r = await send(port, { method: 'POST', body: big });
    expect(r.status).to.equal(503);
    expect(up.seen.length).to.equal(3); // one more try only: the streamed body was not replayed
  });

  it('injects aborts (status, body, percentage) and delays', async () => {
    up = await startUpstream('ok');
    let port = await run({ ...fwd(), fault: { abort: { httpStatus: 418 } } });
    const a = await send(port);
    expect(a.status).to.equal(418);
    expect(a.body).to.equal('fault filter abort');
    expect(up.seen.length).to.equal(0);
    await proxy!.stop(100);
    port = await run({ ...fwd(), fault: { abort: { httpStatus: 500, percentage: 50 } } });
    let aborted = 0;
    for (let i = 0; i < 200; i++) if ((await send(port)).status === 500) aborted++;
    expect(aborted).to.be.within(60, 140);
    await proxy!.stop(100);
    port = await run({ ...fwd(), fault: { delay: { fixedDelayMs: 200 } } });
    const d = await send(port);
    expect(d.status).to.equal(200);
    expect(d.ms).to.be.at.least(195);
    expect(proxy!.prometheus()).to.match(/response_code="200",response_flags="DI"\} 1/);
  });

  it('circuit breaker: maxConnections + http1MaxPendingRequests overflow answers 503 UO', async () => {
    up = await scripted((_n, res) => setTimeout(() => reply(res, 200), 300));
    const port = await run(fwd(), { connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1 } });
    const results = await Promise.all([1, 2, 3, 4].map(() => send(port)));
    const ok = results.filter((r) => r.status === 200);
    const overflow = results.filter((r) => r.status === 503);
    expect(ok.length).to.equal(2);
    expect(overflow.length).to.equal(2);
    expect(overflow[0]!.headers['x-envoy-overloaded']).to.equal('true');
    expect(overflow[0]!.body).to.contain('reset reason: overflow');
    expect(proxy!.statsText()).to.contain(`cluster.${C1}.upstream_rq_pending_overflow: 2`);
    await sleep(10);
  });

  it('backoff is fully jittered and capped', () => {
    const policy = {
      attempts: 5,
      perTryTimeoutMs: 0,
      on: 1,
      codes: new Set<number>(),
      backoffBaseMs: 25,
      backoffMaxMs: 250,
    };
    for (let i = 0; i < 200; i++) {
      expect(backoffMs(policy, 1)).to.be.within(0, 24);
      expect(backoffMs(policy, 3)).to.be.within(0, 174);
      expect(backoffMs(policy, 10)).to.be.within(0, 249);
    }
  });
});
