// End-to-end traffic and security policies on the real cluster (issue #7): fault injection,
// retries, circuit breaking, PeerAuthentication STRICT, AuthorizationPolicy and a pod deleted
// under steady load, each seen from client pods of the bookinfo namespace: `client` (meshed,
// ServiceAccount `default`) and `uninjected-client` (no sidecar). Every scenario removes the mesh
// config it applied (an afterEach also does, should it fail halfway), so order does not matter.
import { expect } from 'chai';
import { bookinfoCluster, MESHED, SAMPLE_APPS, waitFor } from './bookinfo.js';
import type { Cluster } from './cluster.js';
import {
  type LoadOptions,
  type LoadStats,
  loadFrom,
  n,
  scrapeSidecar,
  seriesLines,
  sumSeries,
} from './load.js';
import { isReady, listPods, waitForPods } from './pods.js';
import { CLUSTER_TIMEOUT_MS, stopSharedCluster } from './shared.js';

// A root hook (outside any describe): the cluster goes down once, after every cluster suite.
after(async function () {
  this.timeout(120_000);
  await stopSharedCluster();
});

const REQUESTS = 'istio_requests_total';
const SA = (name: string) => `spiffe://cluster.local/ns/${MESHED}/sa/${name}`;
const show = (s: LoadStats | LoadStats['statuses']) => JSON.stringify(s);
const log = (line: string) => process.stderr.write(`[cluster] ${line}\n`);

describe('cluster e2e: traffic and security policies seen from client pods @integration', function () {
  this.timeout(5 * 60_000);
  let cluster: Cluster;
  /** Mesh config applied by the running test ("kind/name"), removed after it. */
  let applied: string[] = [];

  const apply = async (yaml: string) => {
    await cluster.kubectlOk(['-n', MESHED, 'apply', '-f', '-'], { input: yaml });
    for (const m of yaml.matchAll(/^kind: (\w+)\nmetadata: \{name: ([\w-]+)/gm)) {
      const ref = `${m[1]!.toLowerCase()}/${m[2]}`;
      if (!applied.includes(ref)) applied.push(ref);
    }
  };
  const remove = async (...refs: string[]) => {
    await cluster.kubectlOk(['-n', MESHED, 'delete', '--ignore-not-found', ...refs]);
    applied = applied.filter((r) => !refs.includes(r));
  };
  /** Load from the meshed client (through its sidecar). */
  const fromClient = (opts: LoadOptions) => loadFrom(cluster, MESHED, 'client', 'client', opts);
  /** Load from the pod without a sidecar. */
  const fromUninjected = (opts: LoadOptions) =>
    loadFrom(cluster, MESHED, 'uninjected-client', 'client', opts);
  const podOf = async (app: string) => {
    const [pod] = (await listPods(cluster, MESHED, `app=${app}`)).filter(isReady);
    if (!pod?.status?.podIP) throw new Error(`no Ready ${app} pod`);
    return pod;
  };
  /** A sidecar's Prometheus text, scraped from the uninjected client. */
  const metricsOf = async (app: string) =>
    scrapeSidecar(cluster, MESHED, 'uninjected-client', (await podOf(app)).status!.podIP!);
  /** The meshed client's sidecar config (its admin port answers on the pod's loopback only). */
  const clientConfig = () =>
    cluster.kubectlOk([
      '-n',
      MESHED,
      'exec',
      'client',
      '-c',
      'istio-proxy',
      '--',
      'node',
      '-e',
      "fetch('http://127.0.0.1:15000/config_dump').then((r) => r.text()).then((t) => process.stdout.write(t))",
    ]);

  before(async function () {
    this.timeout(CLUSTER_TIMEOUT_MS);
    cluster = await bookinfoCluster();
    await waitForPods(
      cluster,
      MESHED,
      'the sample pods and both clients Ready',
      (ps) =>
        ps.filter((p) => SAMPLE_APPS.includes(p.metadata?.labels?.app ?? '') && isReady(p)).length === 6 &&
        ps.some((p) => p.metadata?.name === 'client' && isReady(p)) &&
        ps.some((p) => p.metadata?.name === 'uninjected-client' && isReady(p)),
      240_000,
    );
  });

  afterEach(async function () {
    this.timeout(60_000);
    if (applied.length) await remove(...applied);
  });

  it('fault injection: abort 50% answers 503 to about half of 800 requests (flag FI); a fixed 1s delay holds every request at least 1s', async () => {
    const vs = (fault: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - fault:
      ${fault}
    route:
    - destination: {host: details}
`;
    const url = 'http://details:9080/details/0';
    await apply(vs('abort: {percentage: {value: 50}, httpStatus: 503}'));
    await waitFor("the abort fault to reach the client's sidecar", 60_000, async () => {
      const probe = await fromClient({ url, count: 10, match: 'fault filter abort' });
      return probe.matched > 0;
    });
    const before = sumSeries(
      await metricsOf('client'),
      REQUESTS,
      'destination_service_name="details"',
      'response_flags="FI"',
    );
    const abort = await fromClient({ url, count: 800, concurrency: 4, match: 'fault filter abort' });
    const share = (n(abort, 503) / abort.total) * 100;
    log(`abort 50%: ${n(abort, 503)} of ${abort.total} answered 503 (${share.toFixed(1)}%)`);
    expect(n(abort, 503) + n(abort, 200), show(abort)).to.equal(800);
    expect(abort.matched, show(abort)).to.equal(n(abort, 503));
    // binomial(800, 0.5): one standard deviation is 1.8 points; 6 points is over 3 of them
    expect(share, show(abort)).to.be.within(44, 56);
    const metrics = await metricsOf('client');
    const flagged = sumSeries(
      metrics,
      REQUESTS,
      'reporter="source"',
      'destination_service_name="details"',
      'response_code="503"',
      'response_flags="FI"',
    );
    expect(flagged - before, seriesLines(metrics, REQUESTS, 'response_flags="FI"')).to.equal(n(abort, 503));

    await apply(vs('delay: {percentage: {value: 100}, fixedDelay: 1s}'));
    await waitFor("the delay fault to reach the client's sidecar", 60_000, async () => {
      const probe = await fromClient({ url, count: 1 });
      return n(probe, 200) === 1 && (probe.minMs ?? 0) >= 1000;
    });
    const delayed = await fromClient({ url, count: 20, concurrency: 5 });
    log(`delay 1s: 20 requests took ${delayed.minMs?.toFixed(0)}..${delayed.maxMs?.toFixed(0)} ms`);
    expect(delayed.statuses, show(delayed)).to.deep.equal({ 200: 20 });
    // the fastest of them (client side) took at least the delay
    expect(delayed.minMs, show(delayed)).to.be.at.least(1000);
    const di = sumSeries(
      await metricsOf('client'),
      REQUESTS,
      'destination_service_name="details"',
      'response_flags="DI"',
    );
    expect(di).to.be.at.least(20);
    await remove('virtualservice/details');
  });

  it('retries: with attempts 2 on 5xx every request succeeds although details failed each first attempt; without, the failures show', async () => {
    // /flaky/<code> answers <code> to the first attempt of each x-request-id (examples/bookinfo/common.mjs)
    const flaky = (code: number, count: number) =>
      fromClient({ url: `http://details:9080/flaky/${code}`, count, concurrency: 4 });
    const vs = (retries: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - route:
    - destination: {host: details}
    retries: ${retries}
`;
    await apply(vs('{attempts: 2, retryOn: 5xx}'));
    await waitFor("the retry policy to reach the client's sidecar", 60_000, async () => {
      const probe = await flaky(500, 5);
      return n(probe, 200) === 5;
    });
    const seen = async () => {
      const m = await metricsOf('details');
      const at = (code: number) =>
        sumSeries(
          m,
          REQUESTS,
          'reporter="destination"',
          `response_code="${code}"`,
          `source_principal="${SA('default')}"`,
        );
      return { 503: at(503), 500: at(500) };
    };
    const before = await seen();
    const r503 = await flaky(503, 100);
    const r500 = await flaky(500, 100);
    const after = await seen();
    log(
      `retries 2 on 5xx: clients saw ${show(r503.statuses)} (/flaky/503), ${show(r500.statuses)} (/flaky/500); details' sidecar saw +${after[503] - before[503]} 503, +${after[500] - before[500]} 500`,
    );
    expect(r503.statuses, show(r503)).to.deep.equal({ 200: 100 });
    expect(r500.statuses, show(r500)).to.deep.equal({ 200: 100 });
    // every request's first attempt failed upstream (details' sidecar counts each attempt)
    expect(after[503] - before[503]).to.be.at.least(100);
    expect(after[500] - before[500]).to.be.at.least(100);

    // attempts 0 disables retries: every first-attempt failure reaches the client
    await apply(vs('{attempts: 0}'));
    await waitFor('retries disabled in the client sidecar', 60_000, async () => {
      const probe = await flaky(503, 5);
      return n(probe, 503) === 5;
    });
    const none = await flaky(503, 100);
    log(`retries disabled: ${show(none.statuses)}`);
    expect(none.statuses, show(none)).to.deep.equal({ 503: 100 });

    // No VirtualService: Istio's default policy (2 attempts, retriable status 503 only)
    await remove('virtualservice/details');
    await waitFor('the default retry policy again', 60_000, async () => {
      const probe = await flaky(503, 5);
      return n(probe, 200) === 5;
    });
    const default503 = await flaky(503, 50);
    const default500 = await flaky(500, 50);
    log(`default policy: 503 -> ${show(default503.statuses)}, 500 -> ${show(default500.statuses)}`);
    expect(default503.statuses, show(default503)).to.deep.equal({ 200: 50 });
    expect(default500.statuses, show(default500)).to.deep.equal({ 500: 50 });
  });

  it('circuit breaking: maxConnections 1 + http1MaxPendingRequests 1 under 20 concurrent requests -> 503 with flag UO in the client sidecar metrics', async () => {
    await apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details}
spec:
  host: details
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
`);
    // /delay/<ms> answers after <ms>: requests overlap for sure
    const burst = (ms: number) =>
      fromClient({ url: `http://details:9080/delay/${ms}`, count: 40, concurrency: 20 });
    await waitFor("the connection pool limits to reach the client's sidecar", 60_000, async () => {
      const probe = await burst(200);
      return n(probe, 503) > 0;
    });
    const load = await burst(500);
    log(`circuit breaker, 40 requests 20 at a time: ${show(load.statuses)}`);
    expect(n(load, 503), show(load)).to.be.greaterThan(0);
    expect(n(load, 200), show(load)).to.be.greaterThan(0);
    expect(n(load, 200) + n(load, 503), show(load)).to.equal(40);
    expect(load.bodies[503], show(load)).to.include('overflow');
    const metrics = await metricsOf('client');
    const uo = sumSeries(
      metrics,
      REQUESTS,
      'reporter="source"',
      'destination_service_name="details"',
      'response_code="503"',
      'response_flags="UO"',
    );
    expect(uo, seriesLines(metrics, REQUESTS, 'destination_service_name="details"')).to.be.greaterThan(0);
    await remove('destinationrule/details');
    await waitFor('the limits to be lifted', 60_000, async () => {
      const probe = await fromClient({ url: 'http://details:9080/delay/100', count: 20, concurrency: 20 });
      return n(probe, 200) === 20;
    });
  });

  it('PeerAuthentication STRICT: plaintext from the uninjected pod is refused, meshed clients succeed over mTLS with SPIFFE identities; removed, plaintext works again', async () => {
    const details = await podOf('details');
    const direct = `http://${details.status!.podIP}:9080/details/0`;
    await apply(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls: {mode: STRICT}
`);
    await waitFor("STRICT to reach details' sidecar", 60_000, async () => {
      const probe = await fromUninjected({ url: direct, count: 1, timeoutMs: 5000 });
      return n(probe, 'error') === 1;
    });
    const plain = await fromUninjected({ url: direct, count: 20, timeoutMs: 5000 });
    log(`STRICT, plaintext to ${direct}: ${show(plain.statuses)} ${plain.errors[0] ?? ''}`);
    // no HTTP answer at all: the connection is closed
    expect(plain.statuses, show(plain)).to.deep.equal({ error: 20 });
    // details' sidecar (server side): the client's requests arrived over mTLS, both identities SPIFFE
    const overMtls = [
      'reporter="destination"',
      'connection_security_policy="mutual_tls"',
      `source_principal="${SA('default')}"`,
      `destination_principal="${SA('bookinfo-details')}"`,
      'response_code="200"',
    ];
    const before = sumSeries(await metricsOf('details'), REQUESTS, ...overMtls);
    const meshed = await fromClient({ url: 'http://details:9080/details/0', count: 20 });
    expect(meshed.statuses, show(meshed)).to.deep.equal({ 200: 20 });
    const metrics = await metricsOf('details');
    const mtls = sumSeries(metrics, REQUESTS, ...overMtls);
    expect(mtls - before, seriesLines(metrics, REQUESTS, 'reporter="destination"')).to.be.at.least(20);

    await remove('peerauthentication/default');
    await waitFor('PERMISSIVE again', 60_000, async () => {
      const probe = await fromUninjected({ url: direct, count: 1, timeoutMs: 5000 });
      return n(probe, 200) === 1;
    });
    const again = await fromUninjected({ url: direct, count: 20 });
    expect(again.statuses, show(again)).to.deep.equal({ 200: 20 });
    const m2 = await metricsOf('details');
    expect(
      sumSeries(
        m2,
        REQUESTS,
        'reporter="destination"',
        'connection_security_policy="none"',
        'response_code="200"',
      ),
      seriesLines(m2, REQUESTS, 'reporter="destination"'),
    ).to.be.at.least(20);
  });

  it("AuthorizationPolicy allowing only productpage's service account on details: productpage still gets details, another meshed pod gets 403 RBAC: access denied", async () => {
    await apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-viewer}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/${MESHED}/sa/bookinfo-productpage]}
`);
    const details = 'http://details:9080/details/0';
    await waitFor("the policy to reach details' sidecar", 60_000, async () => {
      const probe = await fromClient({ url: details, count: 1 });
      return n(probe, 403) === 1;
    });
    const denied = await fromClient({ url: details, count: 20, match: 'RBAC: access denied' });
    log(`client -> details under the policy: ${show(denied.statuses)} "${denied.bodies[403]}"`);
    expect(denied.statuses, show(denied)).to.deep.equal({ 403: 20 });
    expect(denied.matched, show(denied)).to.equal(20);
    // productpage's sidecar calls details with productpage's identity: allowed
    const page = await fromUninjected({
      url: 'http://productpage:9080/api/v1/products/0',
      count: 20,
      match: '"author":"William Shakespeare"',
    });
    expect(page.statuses, show(page)).to.deep.equal({ 200: 20 });
    expect(page.matched, show(page)).to.equal(20);

    await remove('authorizationpolicy/details-viewer');
    await waitFor('details open again', 60_000, async () => {
      const probe = await fromClient({ url: details, count: 1 });
      return n(probe, 200) === 1;
    });
  });

  it('deleting a reviews pod under steady load (25 rps for 20 s) loses no request the retry policy covers', async () => {
    await apply(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
    retries: {attempts: 3, retryOn: "connect-failure,refused-stream,reset,gateway-error"}
`);
    await waitFor("the retry policy to reach the client's sidecar", 60_000, async () =>
      (await clientConfig()).includes('gateway-error'),
    );
    const [victim] = (await listPods(cluster, MESHED, 'app=reviews,version=v1')).filter(isReady);
    expect(victim, 'a Ready reviews-v1 pod').to.not.equal(undefined);
    const rps = 25;
    const seconds = 20;
    const load = fromClient({
      url: 'http://reviews:9080/reviews/0',
      count: rps * seconds,
      rps,
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 5000));
    await cluster.kubectlOk(['-n', MESHED, 'delete', 'pod', victim!.metadata!.name!, '--wait=false']);
    const result = await load;
    const failed = result.total - n(result, 200);
    log(
      `pod ${victim!.metadata!.name} deleted under ${rps} rps x ${seconds} s: ${failed} of ${result.total} requests failed ${show(result.statuses)}, slowest ${result.maxMs?.toFixed(0)} ms ${result.errors.join('; ')}`,
    );
    expect(result.total).to.equal(rps * seconds);
    // Until the endpoint removal reaches the client's sidecar, tries may still go to the deleted
    // pod: its sidecar drains (stops accepting: connect failure / reset) and later its address is
    // gone (connect failure). Each such try is retried, on another pod (Istio's previous-hosts
    // retry predicate), and the route has no timeout: nothing is left that the policy cannot
    // cover, so no request may fail (a request that sat on a dead address is only slower).
    expect(failed, show(result)).to.equal(0);
    await waitForPods(
      cluster,
      MESHED,
      'the replacement reviews-v1 pod Ready',
      (ps) =>
        ps.some(
          (p) => p.metadata?.labels?.version === 'v1' && p.metadata?.labels?.app === 'reviews' && isReady(p),
        ) && !ps.some((p) => p.metadata?.name === victim!.metadata!.name),
      120_000,
    );
    await remove('virtualservice/reviews');
  });
});
