/**
 * A controller whose RBAC has no `nodes` rule (an upgrade that did not re-apply config/) still
 * starts its Kubernetes source: Nodes only refine locality, so it warns and goes on with pod
 * labels, instead of waiting forever on a list the apiserver forbids.
 */
import { expect } from 'chai';
import { KubernetesSource } from '../../src/config-source/kubernetes.js';
import {
  type KubeRest,
  KubeRest as Rest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { prepareCluster, serviceAccountToken, upsert, waitForServiceAccount } from './helpers.js';

const NS = 'isthmus-no-nodes';
const SA = 'old-controller';

describe('Kubernetes source without permission on nodes @integration', function () {
  this.timeout(90_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;

  before(async () => {
    cp = await controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await upsert(admin, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA, namespace: NS } });
    await waitForServiceAccount(admin, NS, SA);
    // Everything the source watches, except nodes.
    await upsert(admin, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'isthmus-test-no-nodes' },
      rules: [
        { apiGroups: [''], resources: ['namespaces', 'services', 'pods'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
        {
          apiGroups: ['networking.istio.io', 'security.istio.io'],
          resources: ['*'],
          verbs: ['get', 'list', 'watch'],
        },
      ],
    });
    await upsert(admin, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'isthmus-test-no-nodes' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'isthmus-test-no-nodes' },
      subjects: [{ kind: 'ServiceAccount', name: SA, namespace: NS }],
    });
  });

  it('starts, warns that it cannot list nodes, and watches everything else', async () => {
    const token = await serviceAccountToken(admin, NS, SA);
    const rest = new Rest({ server: cp.server, token, ca: cp.caPem });
    const warnings: string[] = [];
    const log = { info() {}, debug() {}, warn: (msg: string) => void warnings.push(msg) };
    const source = new KubernetesSource({ rest, log, resyncMs: 0 });
    try {
      const first = await source.start();
      expect(first.namespaces).to.include(NS);
      expect(warnings.some((w) => w.includes('cannot list nodes'))).to.equal(true, warnings.join('\n'));
      expect(source.status().map((s) => s.path)).to.not.include('/api/v1/nodes');
    } finally {
      await source.close();
    }
  });
});
