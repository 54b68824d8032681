/**
 * Istio's mesh config on a real kube-apiserver: the reconciler (KubernetesSource watching
 * ConfigMap `istio` of its root namespace -> compiler -> Publisher) publishes tables whose
 * `telemetry.accessLog` and outbound catch-all follow the ConfigMap as it is created, edited
 * (a malformed edit is reported naming the field and the last good settings stay) and
 * deleted. Its own root namespace, so the suites sharing the apiserver are not affected.
 */
import { expect } from 'chai';
import {
  type KubeObject,
  type KubeRest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { type RunningReconciler, startReconciler } from '../../src/controller/reconcile.js';
import { podConfig } from '../../src/publish/inspect.js';
import type { ProxyTables } from '../../src/tables/index.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { pod, prepareCluster, remove, service, upsert, waitFor, waitForServiceAccount } from './helpers.js';

const NS = 'isthmus-meshcfg';
const ROOT = 'isthmus-meshcfg-root';

const meshConfigMap = (mesh: string): KubeObject =>
  ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'istio', namespace: ROOT },
    data: { mesh },
  }) as KubeObject;

/** What the mesh config drives in productpage's published tables. */
interface Seen {
  version: string;
  telemetry: ProxyTables['telemetry'];
  catchAll: unknown;
}

describe('mesh config ConfigMap istio on the real apiserver @integration', function () {
  this.timeout(120_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;
  let reconciler: RunningReconciler | undefined;
  const warnings: string[] = [];

  const published = async (): Promise<Seen | undefined> => {
    await reconciler!.idle();
    const cfg = await podConfig(admin, NS, 'productpage-1').catch(() => undefined);
    const t = cfg?.tables as ProxyTables | undefined;
    if (!t) return undefined;
    const rc = t.routeConfigs.find((r) => r.name === '9080');
    const catchAll = rc?.virtualHosts.find((v) => v.domains.includes('*'))?.routes;
    return { version: t.version, telemetry: t.telemetry, catchAll };
  };
  const ALLOW_ANY = [
    { name: 'allow_any', forward: { clusters: [{ cluster: 'PassthroughCluster', weight: 100 }] } },
  ];
  const BLOCK_ALL = [{ name: 'block_all', directResponse: { status: 502 } }];

  before(async function () {
    this.timeout(600_000);
    cp = controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    for (const ns of [NS, ROOT])
      await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await remove(admin, meshConfigMap(''));
    await upsert(admin, service(NS, 'reviews'));
    await upsert(admin, service(NS, 'productpage'));
    await waitForServiceAccount(admin, NS, 'default');
    await upsert(admin, pod(NS, 'productpage-1', { app: 'productpage' }));
    const line = (msg: string) => {
      warnings.push(msg);
    };
    reconciler = await startReconciler({
      rest: admin,
      namespace: ROOT,
      rootNamespace: ROOT,
      leaderElection: false,
      status: false,
      backoffMaxMs: 3000,
      log: { info: () => undefined, debug: () => undefined, warn: line },
    });
  });

  after(async () => {
    await reconciler?.stop();
    await admin.delete(`/api/v1/namespaces/${NS}`).catch(() => undefined);
    await admin.delete(`/api/v1/namespaces/${ROOT}`).catch(() => undefined);
  });

  it('without the ConfigMap: no access log, unknown hosts pass through (ALLOW_ANY)', async () => {
    const got = await waitFor('tables published', published);
    expect(got.telemetry).to.equal(undefined);
    expect(got.catchAll).to.deep.equal(ALLOW_ANY);
  });

  it('creating it publishes the access log and REGISTRY_ONLY (502 for unknown hosts)', async () => {
    await upsert(
      admin,
      meshConfigMap(
        [
          'accessLogFile: /dev/stdout',
          'accessLogEncoding: JSON',
          'outboundTrafficPolicy:',
          '  mode: REGISTRY_ONLY',
          'defaultConfig: {holdApplicationUntilProxyStarts: true}',
        ].join('\n'),
      ),
    );
    const got = await waitFor('the mesh config published', async () => {
      const p = await published();
      return p?.telemetry ? p : undefined;
    });
    expect(got.telemetry).to.deep.equal({ accessLog: { file: '/dev/stdout', encoding: 'JSON' } });
    expect(got.catchAll).to.deep.equal(BLOCK_ALL);
  });

  it('editing it changes the published setting; a malformed edit is reported by field and the last good stays', async () => {
    await upsert(
      admin,
      meshConfigMap('accessLogFile: /var/log/access.log\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n'),
    );
    const edited = await waitFor('the edit published', async () => {
      const p = await published();
      return p?.telemetry?.accessLog?.file === '/var/log/access.log' ? p : undefined;
    });
    expect(edited.telemetry).to.deep.equal({ accessLog: { file: '/var/log/access.log', encoding: 'TEXT' } });

    await upsert(admin, meshConfigMap('accessLogFile: /dev/stdout\naccessLogEncoding: XML\n'));
    const rejected = await waitFor('the malformed edit reported', () =>
      reconciler!.source.currentEvent()?.rejected.find((r) => r.source === `ConfigMap ${ROOT}/istio`),
    );
    expect(rejected).to.deep.equal({
      source: `ConfigMap ${ROOT}/istio`,
      messages: ['mesh: accessLogEncoding: expected TEXT or JSON, got "XML"'],
      keptPrevious: true,
    });
    expect(warnings.some((w) => w.includes('accessLogEncoding: expected TEXT or JSON, got "XML"'))).to.equal(
      true,
    );
    const kept = await published();
    expect(kept!.version).to.equal(edited.version);
    expect(kept!.catchAll).to.deep.equal(BLOCK_ALL);
  });

  it('deleting it (or dropping the fields) goes back to no access log and ALLOW_ANY', async () => {
    await upsert(admin, meshConfigMap('accessLogFile: ""\n'));
    const cleared = await waitFor('the cleared fields published', async () => {
      const p = await published();
      return p && !p.telemetry ? p : undefined;
    });
    expect(cleared.catchAll).to.deep.equal(ALLOW_ANY);
    expect(reconciler!.source.currentEvent()!.rejected).to.deep.equal([]);

    await upsert(admin, meshConfigMap('outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n'));
    await waitFor('REGISTRY_ONLY again', async () => {
      const p = await published();
      return p && JSON.stringify(p.catchAll) === JSON.stringify(BLOCK_ALL);
    });
    await remove(admin, meshConfigMap(''));
    const deleted = await waitFor('the deletion published', async () => {
      const p = await published();
      return p && JSON.stringify(p.catchAll) === JSON.stringify(ALLOW_ANY) ? p : undefined;
    });
    expect(deleted.telemetry).to.equal(undefined);
  });
});
