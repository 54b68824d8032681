/**
 * Leader election on a real Lease (two in-process electors and two whole reconcilers: only
 * the leader writes; the other takes over when the leader stops renewing), and the
 * Kubernetes source across an apiserver restart.
 */
import { expect } from 'chai';
import { KubernetesSource } from '../../src/config-source/kubernetes.js';
import {
  type KubeObject,
  type KubeRest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { LeaderElector } from '../../src/controller/leader.js';
import { type RunningReconciler, startReconciler } from '../../src/controller/reconcile.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { pod, prepareCluster, service, upsert, waitFor, waitForServiceAccount } from './helpers.js';

const LEASE_NS = 'isthmus-le';
const APP_NS = 'isthmus-le-app';

describe('leader election and the Kubernetes source @integration', function () {
  this.timeout(90_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;

  before(async function () {
    this.timeout(600_000);
    cp = controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    for (const name of [LEASE_NS, APP_NS])
      await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await waitForServiceAccount(admin, APP_NS, 'default');
  });

  after(async () => {
    for (const ns of [LEASE_NS, APP_NS])
      await admin?.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('elects one leader; the other takes over when the leader stops renewing', async () => {
    const fast = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 150 };
    const a = new LeaderElector({
      rest: admin,
      namespace: LEASE_NS,
      name: 'le-test',
      identity: 'a',
      ...fast,
    });
    const b = new LeaderElector({
      rest: admin,
      namespace: LEASE_NS,
      name: 'le-test',
      identity: 'b',
      ...fast,
    });
    a.start();
    await waitFor('a leads', () => a.isLeader());
    b.start();
    await new Promise((r) => setTimeout(r, 2000));
    expect(a.isLeader()).to.equal(true);
    expect(b.isLeader()).to.equal(false);
    // A crash: no release, the Lease just stops being renewed.
    const stoppedAt = Date.now();
    await a.stop({ release: false });
    await waitFor('b takes over', () => b.isLeader(), 10_000);
    expect(Date.now() - stoppedAt).to.be.at.least(1000);
    const lease = await admin.get<
      KubeObject & { spec: { holderIdentity: string; leaseTransitions: number } }
    >(`/apis/coordination.k8s.io/v1/namespaces/${LEASE_NS}/leases/le-test`);
    expect(lease.spec.holderIdentity).to.equal('b');
    expect(lease.spec.leaseTransitions).to.equal(1);
    // A graceful stop releases the Lease: the next candidate wins at once.
    const c = new LeaderElector({
      rest: admin,
      namespace: LEASE_NS,
      name: 'le-test',
      identity: 'c',
      ...fast,
    });
    c.start();
    await b.stop();
    await waitFor('c takes over after the release', () => c.isLeader(), 1500);
    await c.stop();
  });

  it('only the leading reconciler writes; the standby publishes when it takes over', async () => {
    const opts = {
      rest: admin,
      namespace: LEASE_NS,
      rootNamespace: 'istio-system',
      leaseDurationMs: 1500,
      retryPeriodMs: 150,
    };
    await upsert(admin, service(APP_NS, 'web'));
    await upsert(admin, pod(APP_NS, 'web-1', { app: 'web' }));
    const first: RunningReconciler = await startReconciler({ ...opts, identity: 'one' });
    await waitFor('one leads', () => first.isLeader());
    const second: RunningReconciler = await startReconciler({ ...opts, identity: 'two' });
    await waitFor('first publish', async () => {
      await first.idle();
      return first.publisher.stats.writes > 0;
    });
    await upsert(admin, pod(APP_NS, 'web-2', { app: 'web', track: 'canary' }));
    await waitFor('both saw the new class', () => first.stats.classes === 2 && second.stats.classes === 2);
    await first.idle();
    expect(second.isLeader()).to.equal(false);
    expect(second.publisher.stats.writes).to.equal(0);
    await first.stop();
    await waitFor('two leads', () => second.isLeader(), 10_000);
    // Everything already written by `one`: `two` reloads hashes and skips unchanged writes.
    await waitFor('two passed', async () => {
      await second.idle();
      return second.publisher.stats.passes > 0;
    });
    expect(second.publisher.stats.skipped).to.be.greaterThan(0);
    await upsert(admin, pod(APP_NS, 'web-3', { app: 'web', track: 'blue' }));
    await waitFor('two writes the new class', async () => {
      await second.idle();
      return second.publisher.stats.writes > 0;
    });
    await second.stop();
  });

  it('the source keeps changes made while its watches were broken, and after', async () => {
    const rest = restFromKubeConfig(cp.kubeConfig);
    const source = new KubernetesSource({ rest, backoffMaxMs: 2000 });
    await source.start();
    const has = (name: string) =>
      source.current()?.services.some((s) => s.namespace === APP_NS && s.name === name) ?? false;
    await cp.stopApiserver();
    await cp.startApiserver();
    await upsert(admin, service(APP_NS, 'during'));
    await waitFor('the service created as the apiserver came back', () => has('during'), 20_000);
    await upsert(admin, service(APP_NS, 'after'));
    await waitFor('the service created after', () => has('after'), 10_000);
    const stats = source.status();
    expect(stats.reduce((n, s) => n + s.errors + s.gone, 0)).to.be.greaterThan(0);
    await source.close();
    rest.close();
  });
});
