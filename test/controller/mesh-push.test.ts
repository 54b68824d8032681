/**
 * The control plane end to end on a real kube-apiserver, no mocks: Services, Pods and
 * EndpointSlices created as API objects, a VirtualService + DestinationRule applied, the
 * reconciler (KubernetesSource -> compiler -> Publisher) writes ConfigMaps, an agent with a
 * real service-account token (TokenRequest) and only the per-namespace Role watches them and
 * drives a real SidecarProxy in front of two loopback upstreams.
 */
import { expect } from 'chai';
import { type ConfigWatcher, startConfigWatcher } from '../../src/agent/config/index.js';
import { renderSection } from '../../src/cli/commands/proxy-config.js';
import { renderProxyStatus } from '../../src/cli/commands/proxy-status.js';
import { endpointSliceVersion } from '../../src/config-source/kubernetes-discovery.js';
import {
  KubeApiError,
  type KubeObject,
  KubeRest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { type RunningReconciler, startReconciler } from '../../src/controller/reconcile.js';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import {
  type AppliedStatus,
  CONTENT_HASH,
  classId,
  statusConfigMapName,
  TABLES_VERSION,
  tablesConfigMapName,
} from '../../src/publish/index.js';
import { podConfig, proxyStatus } from '../../src/publish/inspect.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { send, startUpstream, type Upstream } from '../proxy/helpers.js';
import {
  endpointSlice,
  pod,
  prepareCluster,
  remove,
  service,
  serviceAccountToken,
  upsert,
  waitFor,
  waitForServiceAccount,
} from './helpers.js';

const NS = 'isthmus-push';
const ROOT = 'istio-system';

const vs = (weights: { v1: number; v2: number }): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: NS },
  spec: {
    hosts: ['reviews'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: weights.v1 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: weights.v2 },
        ],
      },
    ],
  },
});

const dr: KubeObject = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: NS },
  spec: { host: 'reviews', subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) },
};

const debugLog = (who: string) => {
  const line = (level: string) => (msg: string, meta?: Record<string, unknown>) =>
    process.stderr.write(
      `${new Date().toISOString()} ${who} ${level} ${msg} ${JSON.stringify(meta ?? {})}\n`,
    );
  return { info: line('info'), warn: line('warn'), debug: line('debug') };
};

async function split(port: number, total: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      const r = await send(port, { host: 'reviews:9080', path: '/r' });
      counts[r.status === 200 ? r.body : `status ${r.status}`] =
        (counts[r.status === 200 ? r.body : `status ${r.status}`] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return counts;
}

describe('control plane push: reconcile -> ConfigMaps -> agent -> proxy @integration', function () {
  this.timeout(120_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;
  let reconciler: RunningReconciler;
  let proxy: SidecarProxy;
  let watcher: ConfigWatcher;
  let agentRest: KubeRest;
  let sliceApi: string;
  const upstreams: Record<string, Upstream> = {};
  const applied: AppliedStatus[] = [];
  const productpage = { app: 'productpage', version: 'v1' };

  const outbound = () => {
    const p = proxy.listenerPort('virtualOutbound');
    if (p === undefined) throw new Error('no outbound listener yet');
    return p;
  };
  const tablesCm = () =>
    admin.get<KubeObject>(
      `/api/v1/namespaces/${NS}/configmaps/${tablesConfigMapName(classId({ namespace: NS, labels: productpage, serviceAccount: 'productpage' }))}`,
    );
  /**
   * Waits until the published tables version differs from `previous` (when given) and the
   * agent applied it; returns the version.
   */
  const waitApplied = async (what: string, previous?: string) => {
    const version = await waitFor(`${what}: published`, async () => {
      await reconciler.idle();
      const v = (await tablesCm()).metadata?.annotations?.[TABLES_VERSION];
      return v && v !== previous ? v : undefined;
    });
    await waitFor(`${what}: applied ${version}`, () => watcher.status()?.tables === version, 20_000);
    return version;
  };

  before(async function () {
    this.timeout(600_000);
    cp = controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    sliceApi = await endpointSliceVersion(admin);
    for (const v of ['v1', 'v2']) upstreams[v] = await startUpstream(v);
    for (const ns of [NS, ROOT])
      await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await upsert(admin, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'productpage', namespace: NS },
    });
    for (const sa of ['productpage', 'default']) await waitForServiceAccount(admin, NS, sa);
    await upsert(admin, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'secret-ish', namespace: NS },
    });
    await upsert(admin, service(NS, 'reviews'));
    await upsert(admin, service(NS, 'productpage'));
    await upsert(admin, pod(NS, 'productpage-1', productpage, 'productpage'));
    for (const v of ['v1', 'v2']) {
      await upsert(admin, pod(NS, `reviews-${v}-1`, { app: 'reviews', version: v }));
      await upsert(
        admin,
        endpointSlice(sliceApi, NS, `reviews-${v}`, 'reviews', [
          { address: '127.0.0.1', port: upstreams[v]!.port, pod: `reviews-${v}-1` },
        ]),
      );
    }
    await upsert(admin, dr);
    await upsert(admin, vs({ v1: 80, v2: 20 }));
    // The namespace's sidecars see only its own services (Istio Sidecar egress), so services
    // of other suites' namespaces, still being deleted, cannot change these tables mid-test.
    await upsert(admin, {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'Sidecar',
      metadata: { name: 'default', namespace: NS },
      spec: { egress: [{ hosts: ['./*'] }] },
    });

    reconciler = await startReconciler({
      rest: admin,
      namespace: ROOT,
      rootNamespace: ROOT,
      leaderElection: false,
      backoffMaxMs: 3000,
      ...(process.env.PUSH_DEBUG ? { log: debugLog('controller') } : {}),
    });

    const token = await serviceAccountToken(admin, NS, 'productpage');
    agentRest = new KubeRest({ server: cp.server, token, ca: cp.caPem });
    proxy = new SidecarProxy({
      adminPort: null,
      statsPort: null,
      healthPort: null,
      listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0 } },
      logger: createLogger('error'),
    });
    await proxy.start();
    watcher = await startConfigWatcher({
      server: cp.server,
      token,
      ca: cp.caPem,
      namespace: NS,
      podName: 'productpage-1',
      labels: productpage,
      proxy,
      backoffMaxMs: 1000,
      ...(process.env.PUSH_DEBUG ? { log: debugLog('agent') } : {}),
      onApplied: (s) => applied.push(s),
    });
    await waitFor('the first config applied', () => watcher.ready.then(() => true), 30_000);
  });

  after(async () => {
    await watcher?.close();
    await reconciler?.stop();
    await proxy?.stop(100);
    for (const u of Object.values(upstreams)) await u.close();
    if (admin) {
      await admin.delete(`/api/v1/namespaces/${NS}`).catch(() => undefined);
      admin.close();
    }
    agentRest?.close();
  });

  it('follows the published 80/20 split (2 points over 5000 requests)', async () => {
    await waitApplied('80/20');
    const total = 5000;
    const counts = await split(outbound(), total);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0), JSON.stringify(counts)).to.equal(total);
    expect(Math.abs((counts.v1 ?? 0) / total - 0.8), JSON.stringify(counts)).to.be.at.most(0.02);
  });

  it('reports the applied version in its status ConfigMap, matching the published one', async () => {
    const version = await waitApplied('report');
    const id = watcher.classId;
    const st = await waitFor('status reported', async () => {
      const cm = await admin.get<KubeObject & { data?: Record<string, string> }>(
        `/api/v1/namespaces/${NS}/configmaps/${statusConfigMapName(id)}`,
      );
      const raw = cm.data?.['productpage-1'];
      const s = raw ? (JSON.parse(raw) as AppliedStatus) : undefined;
      return s?.tables === version ? s : undefined;
    });
    expect(st.endpoints).to.equal(watcher.status()?.endpoints);
  });

  it('lets the agent read only its own ConfigMaps (403 for anything else)', async () => {
    const own = await agentRest.get<KubeObject>(
      `/api/v1/namespaces/${NS}/configmaps/${tablesConfigMapName(watcher.classId)}`,
    );
    expect(own.metadata?.name).to.equal(tablesConfigMapName(watcher.classId));
    const statusOf = async (path: string, query?: Record<string, string>) => {
      try {
        await agentRest.get(path, query);
        return 200;
      } catch (err) {
        return err instanceof KubeApiError ? err.code : -1;
      }
    };
    expect(await statusOf(`/api/v1/namespaces/${NS}/configmaps/secret-ish`)).to.equal(403);
    expect(await statusOf(`/api/v1/namespaces/${NS}/configmaps`)).to.equal(403);
    expect(await statusOf(`/api/v1/namespaces/${ROOT}/configmaps`)).to.equal(403);
    expect(await statusOf('/api/v1/configmaps')).to.equal(403);
    const reviewsClass = classId({
      namespace: NS,
      labels: { app: 'reviews', version: 'v1' },
      serviceAccount: 'default',
    });
    // Another class's tables (its pods run as `default`, which this SA is not).
    expect(
      await statusOf(`/api/v1/namespaces/${NS}/configmaps/${tablesConfigMapName(reviewsClass)}`),
    ).to.equal(
      200, // same namespace: the Role is per namespace (the namespace is the trust boundary)
    );
    expect(await statusOf(`/api/v1/namespaces/${NS}/secrets`)).to.equal(403);
    // Watch by name is allowed (that is how the agent reads), a label-selected list is not.
    expect(
      await statusOf(`/api/v1/namespaces/${NS}/configmaps`, {
        fieldSelector: `metadata.name=${tablesConfigMapName(watcher.classId)}`,
      }),
    ).to.equal(200);
  });

  it('rewrites only the endpoint shard, not the tables, when an endpoint changes', async () => {
    const before = await tablesCm();
    const extra = await startUpstream('v1b');
    upstreams.v1b = extra;
    await upsert(admin, pod(NS, 'reviews-v1-2', { app: 'reviews', version: 'v1' }));
    await upsert(
      admin,
      endpointSlice(sliceApi, NS, 'reviews-v1b', 'reviews', [
        { address: '127.0.0.1', port: extra.port, pod: 'reviews-v1-2' },
      ]),
    );
    const epVersion = watcher.status()?.endpoints;
    await waitFor('new endpoints applied', () => watcher.status()?.endpoints !== epVersion);
    const after = await tablesCm();
    expect(after.metadata?.resourceVersion).to.equal(before.metadata?.resourceVersion);
    const counts = await split(outbound(), 400);
    expect(counts.v1b ?? 0, JSON.stringify(counts)).to.be.greaterThan(0);
    await remove(admin, {
      apiVersion: sliceApi,
      kind: 'EndpointSlice',
      metadata: { name: 'reviews-v1b', namespace: NS },
    });
    await waitFor('endpoint removed', async () => {
      const c = await split(outbound(), 50);
      return !c.v1b;
    });
  });

  it('falls back to the default route when the VirtualService is deleted', async () => {
    const previous = watcher.status()?.tables;
    await remove(admin, vs({ v1: 0, v2: 0 }));
    await waitApplied('VirtualService deleted', previous);
    const counts = await split(outbound(), 1000);
    expect((counts.v1 ?? 0) + (counts.v2 ?? 0), JSON.stringify(counts)).to.equal(1000);
    // No VirtualService: every reviews endpoint, v1 and v2 alike (round robin / least request).
    expect(counts.v2 ?? 0, JSON.stringify(counts)).to.be.within(300, 700);
  });

  it('recovers from an apiserver restart without losing the update made as it came back', async () => {
    const statsBefore = reconciler.source.status().reduce((n, s) => n + s.errors + s.gone, 0);
    await cp.stopApiserver();
    await new Promise((r) => setTimeout(r, 1500));
    await cp.startApiserver();
    // Applied at once: the reflectors are still backing off, their watch is broken.
    const previous = watcher.status()?.tables;
    await upsert(admin, vs({ v1: 0, v2: 100 }));
    const v2Only = await waitApplied('all to v2 after the restart', previous);
    const counts = await split(outbound(), 200);
    expect(counts, JSON.stringify(counts)).to.deep.equal({ v2: 200 });
    const statsAfter = reconciler.source.status().reduce((n, s) => n + s.errors + s.gone, 0);
    expect(statsAfter).to.be.greaterThan(statsBefore);
    // And a change made after the watches are back arrives too.
    await upsert(admin, vs({ v1: 100, v2: 0 }));
    await waitApplied('all to v1', v2Only);
    expect(await split(outbound(), 200)).to.deep.equal({ v1: 200 });
  });

  it('shows the sidecar SYNCED in proxy-status and its routes in proxy-config', async () => {
    await waitApplied('current');
    const rows = await waitFor('SYNCED', async () => {
      const r = await proxyStatus(admin, { namespace: NS });
      return r.find((x) => x.pod === 'productpage-1')?.state === 'SYNCED' ? r : undefined;
    });
    const text = renderProxyStatus(rows);
    expect(text).to.match(/productpage-1\s+isthmus-push\s+SYNCED/);
    // reviews pods have no agent here: published but never reported.
    expect(rows.find((x) => x.pod === 'reviews-v2-1')?.state).to.equal('UNKNOWN');
    const cfg = await podConfig(admin, NS, 'productpage-1');
    expect(renderSection(cfg, 'routes')).to.include(
      'outbound|9080|v1|reviews.isthmus-push.svc.cluster.local',
    );
    expect(renderSection(cfg, 'clusters')).to.match(
      /outbound\|9080\|v2\|reviews\S+\s+reviews.isthmus-push\s+\S+\s+1/,
    );
    expect(renderSection(cfg, 'listeners')).to.include('virtualOutbound');
    expect(renderSection(cfg, 'endpoints')).to.include(`127.0.0.1:${upstreams.v2!.port}`);
  });

  it('skips writes whose content hash is unchanged', async () => {
    await reconciler.idle();
    const cm = await tablesCm();
    expect(cm.metadata?.annotations?.[CONTENT_HASH]).to.be.a('string');
    const writes = reconciler.publisher.stats.writes;
    reconciler.source.resync();
    await new Promise((r) => setTimeout(r, 1000));
    await reconciler.idle();
    expect(reconciler.publisher.stats.writes).to.equal(writes);
    expect(applied.length).to.be.greaterThan(3);
  });
});
