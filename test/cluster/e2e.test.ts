// End-to-end on a real single-node cluster (issue #7): the mesh installed from the repo's
// manifests with the project's image, the bookinfo sample deployed in an injected and in a plain
// namespace, and what a user sees from client pods.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { PROJECT_ROOT as REPO_ROOT } from '../../src/util/paths.js';
import { bookinfoCluster, MESHED, PLAIN, SAMPLE_APPS, waitFor } from './bookinfo.js';
import type { Cluster } from './cluster.js';
import { IMAGES } from './config.js';
import { isReady, listPods, loadFromPod, podNatTable, summarize, waitForPods } from './pods.js';
import { CLUSTER_TIMEOUT_MS, stopSharedCluster } from './shared.js';

const initStatus = (p: V1Pod) => (p.status?.initContainerStatuses ?? []).find((c) => c.name === 'istio-init');
const names = (list?: { name: string }[]) => (list ?? []).map((c) => c.name);
let last = '';

// A root hook (outside any describe): the cluster goes down once, after every cluster suite.
after(async function () {
  this.timeout(120_000);
  await stopSharedCluster();
});

describe('cluster e2e: install, injection and traffic on real pods @integration', function () {
  this.timeout(5 * 60_000);
  let cluster: Cluster;

  before(async function () {
    this.timeout(CLUSTER_TIMEOUT_MS);
    cluster = await bookinfoCluster();
  });

  it('the controller runs as a pod in istio-system and the apiserver reaches its webhooks through the Service', async () => {
    const pods = await listPods(cluster, 'istio-system', 'app=isthmus-controller');
    expect(pods.filter(isReady), summarize(pods)).to.have.length(1);
    expect(pods[0]?.spec?.containers[0]?.image).to.equal(IMAGES.project);
    // A bad VirtualService is refused by the validating webhook: apiserver -> ClusterIP -> pod.
    const bad = await cluster.kubectl(['-n', MESHED, 'apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'networking.istio.io/v1beta1',
        kind: 'VirtualService',
        metadata: { name: 'bad' },
        spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight: -1 }] }] },
      }),
    });
    expect(bad.code, bad.stdout).to.not.equal(0);
    expect(bad.stderr).to.match(/denied the request|admission webhook/);
  });

  it('every sample pod in an istio-injection=enabled namespace gets istio-init and istio-proxy', async () => {
    const pods = await waitForPods(
      cluster,
      MESHED,
      'the sample pods',
      (ps) =>
        ps.filter((p) => p.metadata?.labels?.app && SAMPLE_APPS.includes(p.metadata.labels.app)).length === 6,
    );
    const sample = pods.filter((p) => SAMPLE_APPS.includes(p.metadata?.labels?.app ?? ''));
    for (const pod of sample) {
      expect(names(pod.spec?.initContainers), pod.metadata?.name).to.include('istio-init');
      expect(names(pod.spec?.containers), pod.metadata?.name).to.include('istio-proxy');
      expect(pod.metadata?.annotations?.['sidecar.istio.io/status'], pod.metadata?.name).to.be.a('string');
      const proxy = pod.spec?.containers.find((c) => c.name === 'istio-proxy');
      expect(proxy?.image).to.equal(IMAGES.project);
    }
  });

  it('istio-init exits 0 having programmed the capture rules in the pod network namespace', async () => {
    const pods = await waitForPods(
      cluster,
      MESHED,
      'istio-init to finish and the app containers to run',
      (ps) =>
        ps
          .filter((p) => SAMPLE_APPS.includes(p.metadata?.labels?.app ?? ''))
          .every(
            (p) =>
              initStatus(p)?.state?.terminated &&
              (p.status?.containerStatuses ?? []).some((c) => c.name !== 'istio-proxy' && c.state?.running),
          ),
      180_000,
    );
    const sample = pods.filter((p) => SAMPLE_APPS.includes(p.metadata?.labels?.app ?? ''));
    expect(sample).to.have.length(6);
    for (const pod of sample) {
      expect(
        initStatus(pod)?.state?.terminated?.exitCode,
        `${pod.metadata?.name}\n${summarize([pod])}`,
      ).to.equal(0);
      const app = pod.spec?.containers.find((c) => c.name !== 'istio-proxy')?.name ?? '';
      const nat = await podNatTable(cluster, pod, app);
      expect(nat, pod.metadata?.name).to.include(':ISTIO_INBOUND');
      expect(nat).to.include(':ISTIO_OUTPUT');
      expect(nat).to.match(/-A PREROUTING -p tcp -j ISTIO_INBOUND/);
      expect(nat).to.match(/-A OUTPUT -p tcp -j ISTIO_OUTPUT/);
      expect(nat).to.match(/-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
      expect(nat).to.match(/-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006/);
      expect(nat).to.match(/--uid-owner 1337 -j RETURN/);
    }
  });

  it('a pod labelled sidecar.istio.io/inject=false is not injected', async () => {
    const [pod] = await waitForPods(
      cluster,
      MESHED,
      'the uninjected client',
      (ps) => ps.some((p) => p.metadata?.name === 'uninjected-client'),
      60_000,
    ).then((ps) => ps.filter((p) => p.metadata?.name === 'uninjected-client'));
    expect(names(pod?.spec?.initContainers)).to.not.include('istio-init');
    expect(names(pod?.spec?.containers)).to.deep.equal(['client']);
    expect(pod?.metadata?.annotations?.['sidecar.istio.io/status']).to.equal(undefined);
  });

  it('plain productpage serves traffic from a client pod through Service DNS', async () => {
    const pods = await waitForPods(
      cluster,
      PLAIN,
      'every pod Ready',
      (ps) => ps.length === 7 && ps.every(isReady),
      120_000,
    );
    for (const pod of pods) expect(names(pod.spec?.containers)).to.not.include('istio-proxy');
    const result = await loadFromPod(
      cluster,
      PLAIN,
      'client',
      'http://productpage:9080/api/v1/products/0',
      30,
    );
    process.stderr.write(`[cluster] plain productpage from a client pod: ${JSON.stringify(result)}\n`);
    expect(result.statuses, JSON.stringify(result)).to.deep.equal({ 200: 30 });
    // (productpage keeps its connection to reviews alive, so without a mesh it sticks to one version)
    expect(
      Object.keys(result.versions).every((v) => ['v1', 'v2', 'v3'].includes(v)),
      JSON.stringify(result),
    ).to.equal(true);
    // kube-proxy spreads new connections over the three reviews versions
    const reviews = await loadFromPod(
      cluster,
      PLAIN,
      'client',
      'http://reviews.plain.svc.cluster.local:9080/reviews/0',
      30,
    );
    process.stderr.write(`[cluster] plain reviews from a client pod: ${JSON.stringify(reviews)}\n`);
    expect(reviews.statuses, JSON.stringify(reviews)).to.deep.equal({ 200: 30 });
    expect(Object.keys(reviews.versions).length, JSON.stringify(reviews)).to.be.at.least(2);
  });

  it('injected sample pods become Ready: workload certificate from the mesh CA, /healthz/ready on 15021, app probes on 15020', async () => {
    const deadline = Date.now() + 60_000;
    let pods: V1Pod[] = [];
    while (Date.now() < deadline) {
      pods = (await listPods(cluster, MESHED)).filter((p) =>
        SAMPLE_APPS.includes(p.metadata?.labels?.app ?? ''),
      );
      if (pods.length === 6 && pods.every(isReady)) {
        // Ready means the sidecar holds a workload certificate from the controller's CA, reached
        // in-cluster through its Service with the pod's projected token (CSR + TokenReview).
        const pod = pods.find((p) => p.metadata?.labels?.app === 'details')!;
        const certs = await cluster.kubectlOk([
          '-n',
          MESHED,
          'exec',
          pod.metadata!.name!,
          '-c',
          'istio-proxy',
          '--',
          'node',
          '-e',
          "fetch('http://127.0.0.1:15000/certs').then((r) => r.text()).then((t) => process.stdout.write(t))",
        ]);
        const chain = JSON.parse(certs).certificates[0]?.cert_chain[0];
        expect(chain?.subject_alt_names?.[0]?.uri, certs).to.equal(
          `spiffe://cluster.local/ns/${MESHED}/sa/${pod.spec?.serviceAccountName}`,
        );
        return;
      }
      const proxies = pods.flatMap((p) =>
        (p.status?.containerStatuses ?? []).filter((c) => c.name === 'istio-proxy'),
      );
      const crashed = proxies.filter(
        (c) => (c.lastState?.terminated?.exitCode ?? 0) !== 0 || c.state?.terminated,
      );
      if (crashed.length === proxies.length && proxies.length === 6) {
        const pod = pods[0]?.metadata?.name ?? '';
        const logs = await cluster.kubectl(['-n', MESHED, 'logs', pod, '-c', 'istio-proxy', '--tail=40']);
        const text = `${logs.stdout}${logs.stderr}`;
        const reason = text.split('\n').find((l) => /error/i.test(l)) ?? text.trim().split('\n').pop();
        expect.fail(`istio-proxy exits in every pod (${summarize(pods.slice(0, 1))}): ${reason}`);
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    // The sidecar runs but does not report ready: say why (probe events).
    const events = await cluster.kubectl([
      '-n',
      MESHED,
      'get',
      'events',
      '--field-selector=reason=Unhealthy',
      '-o',
      'custom-columns=OBJ:.involvedObject.name,MSG:.message',
      '--no-headers',
    ]);
    const unique = [
      ...new Set(
        events.stdout
          .split('\n')
          .map((l) => l.replace(/^\S+\s+/, ''))
          .filter(Boolean),
      ),
    ].slice(0, 5);
    expect.fail(
      `injected pods not Ready after 60s:\n${summarize(pods)}\nprobe failures: ${unique.join(' | ') || 'none reported'}`,
    );
  });

  it('meshed productpage serves traffic routed by the compiled tables over mTLS, and Istio metrics show it', async () => {
    await waitForPods(
      cluster,
      MESHED,
      'every sample pod Ready',
      (ps) => ps.filter(isReady).length >= 7,
      120_000,
    );
    const result = await loadFromPod(
      cluster,
      MESHED,
      'uninjected-client',
      'http://productpage:9080/api/v1/products/0',
      30,
    );
    process.stderr.write(`[cluster] meshed productpage from a client pod: ${JSON.stringify(result)}\n`);
    expect(result.statuses, JSON.stringify(result)).to.deep.equal({ 200: 30 });
    // The sidecar balances per request (plain productpage sticks to one reviews connection).
    expect(Object.keys(result.versions).length, JSON.stringify(result)).to.be.at.least(2);
    const [productpage] = (await listPods(cluster, MESHED)).filter(
      (p) => p.metadata?.labels?.app === 'productpage',
    );
    const ip = productpage?.status?.podIP;
    expect(ip, 'productpage pod IP').to.be.a('string');
    const metrics = await cluster.kubectlOk([
      '-n',
      MESHED,
      'exec',
      'uninjected-client',
      '--',
      'node',
      '-e',
      `fetch('http://${ip}:15090/stats/prometheus').then((r) => r.text()).then((t) => process.stdout.write(t))`,
    ]);
    const requests = (...labels: string[]) =>
      metrics
        .split('\n')
        .filter((l) => l.startsWith('istio_requests_total{') && labels.every((x) => l.includes(x)))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const sa = (name: string) => `spiffe://cluster.local/ns/${MESHED}/sa/bookinfo-${name}`;
    // Inbound: the uninjected client's 30 requests, reported by productpage's sidecar.
    expect(
      requests('reporter="destination"', 'destination_workload="productpage-v1"', 'response_code="200"'),
      metrics.slice(0, 3000),
    ).to.be.at.least(30);
    // Outbound to details: HTTP routed by the tables, with both SPIFFE identities (mTLS, peer verified).
    expect(
      requests(
        'reporter="source"',
        `source_principal="${sa('productpage')}"`,
        `destination_principal="${sa('details')}"`,
        'response_code="200"',
      ),
      metrics.slice(0, 3000),
    ).to.be.at.least(30);
  });

  it('isthmus proxy-status lists every sidecar SYNCED at the published version', async () => {
    const status = await waitFor('every sidecar SYNCED', 60_000, async () => {
      const res = spawnSync(
        process.execPath,
        [
          join(REPO_ROOT, 'bin', 'isthmus.js'),
          'proxy-status',
          '--kubeconfig',
          cluster.controlPlane.kubeconfigPath,
          '-n',
          MESHED,
        ],
        { encoding: 'utf8' },
      );
      last = `${res.stdout}${res.stderr}`;
      return res.status === 0;
    }).then(() => last);
    process.stderr.write(`[cluster] proxy-status:\n${status}`);
    const rows = status.split('\n').filter((l) => l.includes(MESHED));
    expect(rows.length, status).to.be.at.least(6);
    expect(
      rows.every((l) => l.includes('SYNCED')),
      status,
    ).to.equal(true);
  });

  it('VirtualService + DestinationRule: 80/20 split v1/v3 within 3 points, end-user jason always v2, a new split applies live', async () => {
    const rules = (v1: number, v3: number) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: ${MESHED}}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: ${MESHED}}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${v1}
    - destination: {host: reviews, subset: v3}
      weight: ${v3}
`;
    const url = 'http://productpage:9080/api/v1/products/0';
    await cluster.kubectlOk(['apply', '-f', '-'], { input: rules(80, 20) });
    await waitFor("the 80/20 rules to reach productpage's sidecar", 60_000, async () => {
      const probe = await loadFromPod(cluster, MESHED, 'uninjected-client', url, 20);
      return !probe.versions.v2 && (probe.versions.v1 ?? 0) > 0;
    });
    const split = await loadFromPod(cluster, MESHED, 'uninjected-client', url, 2000);
    process.stderr.write(`[cluster] 80/20 split over 2000 requests: ${JSON.stringify(split.versions)}\n`);
    expect(split.statuses, JSON.stringify(split)).to.deep.equal({ 200: 2000 });
    expect(split.versions.v2 ?? 0).to.equal(0);
    expect(((split.versions.v1 ?? 0) / 2000) * 100).to.be.within(77, 83);
    const jason = await loadFromPod(cluster, MESHED, 'uninjected-client', url, 50, { 'end-user': 'jason' });
    expect(jason.versions, JSON.stringify(jason)).to.deep.equal({ v2: 50 });
    // A new split: measure (and print) how long the change takes to be observed.
    const applied = Date.now();
    await cluster.kubectlOk(['apply', '-f', '-'], { input: rules(0, 100) });
    await waitFor('reviews 100% v3 after the new apply', 60_000, async () => {
      const probe = await loadFromPod(cluster, MESHED, 'uninjected-client', url, 10);
      return probe.versions.v3 === 10;
    });
    process.stderr.write(
      `[cluster] new split observed ${Date.now() - applied} ms after kubectl apply returned\n`,
    );
    await cluster.kubectlOk(['-n', MESHED, 'delete', 'virtualservice/reviews', 'destinationrule/reviews']);
  });
});
