/**
 * exportTo for endpoint shards on a real kube-apiserver: the endpoints of a Service annotated
 * `networking.istio.io/exportTo: "."` are published only into shards its own namespace's
 * service accounts can read; a workload of another namespace neither gets them in its index
 * nor can read them with its service-account token (403), while mesh-wide shards stay
 * readable by both.
 */
import { expect } from 'chai';
import { endpointSliceVersion } from '../../src/config-source/kubernetes-discovery.js';
import {
  KubeApiError,
  type KubeObject,
  KubeRest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { type RunningReconciler, startReconciler } from '../../src/controller/reconcile.js';
import {
  ENDPOINTS_ROLE,
  type EndpointIndex,
  INDEX_KEY,
  readShardConfigMap,
  saGroup,
  scopedEndpointsRole,
  scopeId,
  shardsOf,
} from '../../src/publish/index.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import {
  endpointSlice,
  pod,
  prepareCluster,
  service,
  serviceAccountToken,
  upsert,
  waitFor,
  waitForServiceAccount,
} from './helpers.js';

const A = 'isthmus-export-a';
const B = 'isthmus-export-b';
const CTRL = 'isthmus-export-ctrl';
const LEDGER = `outbound|9080||ledger.${A}.svc.cluster.local`;
const CATALOG = `outbound|9080||catalog.${B}.svc.cluster.local`;

type Rbac = KubeObject & {
  rules?: Array<{ resourceNames?: string[] }>;
  subjects?: Array<{ name: string }>;
};

async function code(rest: KubeRest, path: string): Promise<number> {
  try {
    await rest.get(path);
    return 200;
  } catch (err) {
    return err instanceof KubeApiError ? err.code : -1;
  }
}

describe('exportTo of endpoint shards @integration', function () {
  this.timeout(90_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;
  let rec: RunningReconciler;
  const agents = new Map<string, KubeRest>();

  const indexOf = async (ns: string): Promise<EndpointIndex | undefined> => {
    const id = rec.publisher.lastPlan?.tables.find((t) => t.namespace === ns)?.name;
    if (!id) return undefined;
    const cm = await admin.get<KubeObject & { data?: Record<string, string> }>(
      `/api/v1/namespaces/${ns}/configmaps/${id}`,
    );
    return JSON.parse(cm.data?.[INDEX_KEY] ?? '{}') as EndpointIndex;
  };

  before(async function () {
    this.timeout(600_000);
    cp = controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    for (const name of [A, B, CTRL, 'istio-system'])
      await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    const slices = await endpointSliceVersion(admin);
    const ledger = service(A, 'ledger');
    ledger.metadata!.annotations = { 'networking.istio.io/exportTo': '.' };
    await upsert(admin, ledger);
    await upsert(admin, service(B, 'catalog'));
    await upsert(
      admin,
      endpointSlice(slices, A, 'ledger', 'ledger', [{ address: '10.2.0.1', port: 9080, pod: 'ledger' }]),
    );
    await upsert(
      admin,
      endpointSlice(slices, B, 'catalog', 'catalog', [{ address: '10.2.0.2', port: 9080, pod: 'catalog' }]),
    );
    for (const ns of [A, B]) {
      await waitForServiceAccount(admin, ns, 'default');
      await upsert(admin, pod(ns, 'client', { app: 'client' }));
      const token = await serviceAccountToken(admin, ns, 'default');
      agents.set(ns, new KubeRest({ server: cp.server, token, ca: cp.caPem }));
    }
    rec = await startReconciler({
      rest: admin,
      namespace: CTRL,
      rootNamespace: 'istio-system',
      leaderElection: false,
    });
    await waitFor('both namespaces published with the ledger endpoints', async () => {
      await rec.idle();
      const a = await indexOf(A);
      const b = await indexOf(B);
      return a?.pooled[LEDGER] && b?.pooled[CATALOG] ? true : undefined;
    });
  });

  after(async () => {
    await rec?.stop();
    for (const r of agents.values()) r.close();
    for (const ns of [A, B, CTRL]) await admin?.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('publishes the "." service into its namespace scope only, and not into another namespace index', async () => {
    const a = (await indexOf(A))!;
    const b = (await indexOf(B))!;
    const scope = scopeId([A]);
    expect(a.pooled[LEDGER]).to.equal(`@${scope}/${LEDGER}`);
    expect(b.pooled).to.not.have.property(LEDGER);
    expect(b.scopes).to.equal(undefined);
    const scoped = shardsOf(a).filter((n) => n.startsWith(`isthmus-endpoints-${scope}-`));
    expect(scoped).to.have.length(1);
    expect(shardsOf(b)).to.not.include(scoped[0]);
    // No mesh-wide shard holds the ledger endpoints.
    for (const n of shardsOf(b)) {
      const cm = await admin.get<KubeObject & { data?: Record<string, string> }>(
        `/api/v1/namespaces/${CTRL}/configmaps/${n}`,
      );
      const data = readShardConfigMap(cm);
      expect(data.ok && Object.keys(data.value).some((k) => k.includes('ledger'))).to.equal(false);
    }
  });

  it('lets only the exporting namespace read the scoped shard (403 for another namespace)', async () => {
    const a = (await indexOf(A))!;
    const scope = scopeId([A]);
    const scoped = shardsOf(a).find((n) => n.startsWith(`isthmus-endpoints-${scope}-`))!;
    const path = `/api/v1/namespaces/${CTRL}/configmaps/${scoped}`;
    expect(await code(agents.get(A)!, path)).to.equal(200);
    expect(await code(agents.get(B)!, path)).to.equal(403);
    const publicShard = shardsOf((await indexOf(B))!)[0]!;
    expect(await code(agents.get(A)!, `/api/v1/namespaces/${CTRL}/configmaps/${publicShard}`)).to.equal(200);
    expect(await code(agents.get(B)!, `/api/v1/namespaces/${CTRL}/configmaps/${publicShard}`)).to.equal(200);
    const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${CTRL}`;
    const pub = await admin.get<Rbac>(`${rbac}/roles/${ENDPOINTS_ROLE}`);
    expect(pub.rules?.flatMap((r) => r.resourceNames ?? [])).to.not.include(scoped);
    const binding = await admin.get<Rbac>(`${rbac}/rolebindings/${scopedEndpointsRole(scope)}`);
    expect(binding.subjects?.map((s) => s.name)).to.deep.equal([saGroup(A)]);
  });

  it('moves the endpoints to the mesh-wide shards when the annotation is removed; the scope goes away', async () => {
    await admin.mergePatch(`/api/v1/namespaces/${A}/services/ledger`, {
      metadata: { annotations: { 'networking.istio.io/exportTo': null } },
    });
    const scope = scopeId([A]);
    await waitFor('ledger visible to namespace B', async () => {
      await rec.idle();
      return (await indexOf(B))?.pooled[LEDGER] === LEDGER ? true : undefined;
    });
    expect((await indexOf(A))!.pooled[LEDGER]).to.equal(LEDGER);
    await waitFor('the scoped Role is gone', () =>
      code(
        admin,
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${CTRL}/roles/${scopedEndpointsRole(scope)}`,
      ).then((c) => c === 404),
    );
    expect(await code(admin, `/api/v1/namespaces/${CTRL}/configmaps/isthmus-endpoints-${scope}-0`)).to.equal(
      404,
    );
  });
});
