/**
 * Status conditions and Events on mesh resources, written by the reconciler on a real
 * kube-apiserver: Istio's shape (conditions[type=Reconciled], observedGeneration,
 * validationMessages with analysis codes), one Event per change of state, no write when
 * nothing changed, and none at all from a standby replica.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { KINDS } from '../../src/api/kinds.js';
import { endpointSliceVersion } from '../../src/config-source/kubernetes-discovery.js';
import {
  type KubeList,
  type KubeObject,
  type KubeRest,
  restFromKubeConfig,
} from '../../src/config-source/kubernetes-rest.js';
import { type RunningReconciler, startReconciler } from '../../src/controller/reconcile.js';
import type { MeshResourceStatus } from '../../src/controller/status.js';
import { PROJECT_ROOT } from '../../src/util/paths.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import {
  endpointSlice,
  pod,
  prepareCluster,
  remove,
  service,
  upsert,
  waitFor,
  waitForServiceAccount,
} from './helpers.js';

const NS = 'isthmus-status';
const CTRL_NS = 'isthmus-status-ctrl';
const ROOT = 'istio-system';
const VS_PATH = `/apis/networking.istio.io/v1beta1/namespaces/${NS}/virtualservices`;
const DR_PATH = `/apis/networking.istio.io/v1beta1/namespaces/${NS}/destinationrules`;

type WithStatus = KubeObject & { status?: MeshResourceStatus; metadata: { generation?: number } };

const vs = (name: string, subset: string): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name, namespace: NS },
  spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset } }] }] },
});

const dr = (subsets: string[]): KubeObject => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: NS },
  spec: { host: 'reviews', subsets: subsets.map((v) => ({ name: v, labels: { version: v } })) },
});

const reconciled = (o: WithStatus) => o.status?.conditions?.find((c) => c.type === 'Reconciled');

async function eventsOf(rest: KubeRest, kind: string, name: string): Promise<KubeObject[]> {
  const list = await rest.get<KubeList>(`/api/v1/namespaces/${NS}/events`, {
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items;
}

describe('status conditions and Events on mesh resources @integration', function () {
  this.timeout(90_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let admin: KubeRest;

  before(async function () {
    this.timeout(600_000);
    cp = controlPlane();
    await prepareCluster(cp);
    admin = restFromKubeConfig(cp.kubeConfig);
    for (const name of [NS, CTRL_NS, ROOT])
      await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await waitForServiceAccount(admin, NS, 'default');
    const slices = await endpointSliceVersion(admin);
    await upsert(admin, service(NS, 'reviews'));
    await upsert(admin, pod(NS, 'reviews-v1', { app: 'reviews', version: 'v1' }));
    await upsert(
      admin,
      endpointSlice(slices, NS, 'reviews-v1', 'reviews', [
        { address: '10.1.0.1', port: 9080, pod: 'reviews-v1' },
      ]),
    );
    await upsert(admin, pod(NS, 'productpage', { app: 'productpage' }));
  });

  after(async () => {
    for (const ns of [NS, CTRL_NS]) await admin?.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
    admin?.close();
  });

  it('config/ RBAC lets the controller patch status of every mesh kind and write Events, nothing more', async () => {
    const applied = await cp.kubectl(['apply', '-f', join(PROJECT_ROOT, 'config', '10-rbac.yaml')]);
    expect(applied.code, applied.stderr).to.equal(0);
    const can = async (verb: string, resource: string, subresource?: string) => {
      const r = await cp.kubectl([
        'auth',
        'can-i',
        verb,
        resource,
        '-n',
        NS,
        '--as=system:serviceaccount:istio-system:isthmus-controller',
        ...(subresource ? [`--subresource=${subresource}`] : []),
      ]);
      return r.stdout.trim();
    };
    for (const k of KINDS) {
      const resource = `${k.plural}.${k.group}`;
      expect(await can('patch', resource, 'status'), `patch ${resource}/status`).to.equal('yes');
      expect(await can('update', resource, 'status'), `update ${resource}/status`).to.equal('no');
      expect(await can('patch', resource), `patch ${resource}`).to.equal('no');
    }
    expect(await can('create', 'events')).to.equal('yes');
    expect(await can('patch', 'events')).to.equal('yes');
    expect(await can('delete', 'events')).to.equal('no');
  });

  it('a standby replica writes no status', async () => {
    // Someone else holds the Lease for the whole test: this replica stays standby.
    await upsert(admin, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'isthmus-controller', namespace: CTRL_NS },
      spec: {
        holderIdentity: 'another-replica',
        leaseDurationSeconds: 600,
        renewTime: new Date().toISOString().replace(/Z$/, '000Z'),
      },
    } as KubeObject);
    const standby = await startReconciler({
      rest: admin,
      namespace: CTRL_NS,
      rootNamespace: ROOT,
      leaseDurationMs: 600_000,
      retryPeriodMs: 200,
    });
    try {
      const created = await upsert(admin, vs('standby', 'v1'));
      // The snapshot holding it has been compiled (and handed to the status writer).
      await waitFor('the standby compiled the VirtualService', () =>
        standby.source.current()?.virtualServices.some((v) => v.name === 'standby'),
      );
      await standby.idle();
      expect(standby.isLeader()).to.equal(false);
      expect(standby.status?.stats.writes).to.equal(0);
      const o = await admin.get<WithStatus>(`${VS_PATH}/standby`);
      expect(o.status?.conditions).to.equal(undefined);
      expect(o.metadata.resourceVersion).to.equal(created.metadata?.resourceVersion);
      expect(await eventsOf(admin, 'VirtualService', 'standby')).to.have.length(0);
    } finally {
      await standby.stop();
      await remove(admin, vs('standby', 'v1'));
    }
  });

  describe('on the leader', () => {
    let rec: RunningReconciler;

    before(async () => {
      rec = await startReconciler({
        rest: admin,
        namespace: CTRL_NS,
        rootNamespace: ROOT,
        leaderElection: false,
      });
    });
    after(async () => rec?.stop());

    it('a VirtualService naming an undefined subset: Reconciled False, IST0101, a Warning Event', async () => {
      await upsert(admin, dr(['v1', 'v3']));
      const created = await upsert(admin, vs('reviews', 'v9'));
      const o = await waitFor('status of the VirtualService', async () => {
        const x = await admin.get<WithStatus>(`${VS_PATH}/reviews`);
        return reconciled(x)?.status === 'False' ? x : undefined;
      });
      const c = reconciled(o)!;
      expect(c.reason).to.equal('ReferencedResourceNotFound');
      expect(c.message).to.contain('IST0101').and.contain('"v9"');
      expect(c.lastTransitionTime).to.be.a('string');
      expect(o.status?.observedGeneration).to.equal(created.metadata?.generation);
      const ist0101 = o.status!.validationMessages.filter((m) => m.type.code === 'IST0101');
      expect(ist0101).to.have.length(1);
      expect(ist0101[0]).to.include({ level: 'ERROR' });
      expect(ist0101[0]!.type).to.deep.equal({ code: 'IST0101', name: 'ReferencedResourceNotFound' });
      expect(ist0101[0]!.description)
        .to.contain('spec.http[0].route[0].destination.subset')
        .and.contain('v9');
      const events = await waitFor('an Event', async () => {
        const e = await eventsOf(admin, 'VirtualService', 'reviews');
        return e.length ? e : undefined;
      });
      expect(events).to.have.length(1);
      expect(events[0]).to.include({ type: 'Warning', reason: 'ReferencedResourceNotFound', count: 1 });
      expect(events[0]!.involvedObject).to.include({ uid: created.metadata?.uid, namespace: NS });
    });

    it('a DestinationRule subset that selects no pod: IST0173 DestinationRuleSubsetNotSelectPods', async () => {
      const o = await waitFor('status of the DestinationRule', async () => {
        const x = await admin.get<WithStatus>(`${DR_PATH}/reviews`);
        return x.status?.validationMessages?.length ? x : undefined;
      });
      expect(o.status!.validationMessages.map((m) => [m.type.code, m.type.name])).to.deep.equal([
        ['IST0173', 'DestinationRuleSubsetNotSelectPods'],
      ]);
      expect(o.status!.validationMessages[0]!.description).to.contain('subset "v3"');
      expect(reconciled(o)).to.include({ status: 'False', reason: 'DestinationRuleSubsetNotSelectPods' });
    });

    it('fixing the VirtualService turns it back to Reconciled True, with a Normal Event', async () => {
      const before = await admin.get<WithStatus>(`${VS_PATH}/reviews`);
      const fixed = await upsert(admin, vs('reviews', 'v1'));
      expect(fixed.metadata?.generation).to.equal((before.metadata.generation ?? 0) + 1);
      const o = await waitFor('Reconciled True', async () => {
        const x = await admin.get<WithStatus>(`${VS_PATH}/reviews`);
        return reconciled(x)?.status === 'True' ? x : undefined;
      });
      expect(reconciled(o)).to.include({ reason: 'Accepted', message: 'accepted' });
      expect(o.status?.observedGeneration).to.equal(fixed.metadata?.generation);
      expect(o.status?.validationMessages).to.equal(undefined);
      // The spec is the user's: only status was written.
      expect(o.spec).to.deep.equal(vs('reviews', 'v1').spec);
      const events = await waitFor('a second Event', async () => {
        const e = await eventsOf(admin, 'VirtualService', 'reviews');
        return e.length === 2 ? e : undefined;
      });
      expect(events.map((e) => `${e.type}/${e.reason}`).sort()).to.deep.equal([
        'Normal/Accepted',
        'Warning/ReferencedResourceNotFound',
      ]);
    });

    it('writes no status and no Event when nothing about the resource changed', async () => {
      await rec.idle();
      const vsBefore = await admin.get<WithStatus>(`${VS_PATH}/reviews`);
      const drBefore = await admin.get<WithStatus>(`${DR_PATH}/reviews`);
      const writes = rec.status!.stats.writes;
      const events = rec.status!.stats.events;
      const compiled = rec.stats.events;
      // A change elsewhere (a new workload) makes the controller recompile and re-check status.
      await upsert(admin, pod(NS, 'details', { app: 'details' }));
      await waitFor('a new snapshot compiled', () => rec.stats.events > compiled);
      await rec.idle();
      expect(rec.status!.stats.writes).to.equal(writes);
      expect(rec.status!.stats.events).to.equal(events);
      const vsAfter = await admin.get<WithStatus>(`${VS_PATH}/reviews`);
      const drAfter = await admin.get<WithStatus>(`${DR_PATH}/reviews`);
      expect(vsAfter.metadata.resourceVersion).to.equal(vsBefore.metadata.resourceVersion);
      expect(drAfter.metadata.resourceVersion).to.equal(drBefore.metadata.resourceVersion);
      expect(await eventsOf(admin, 'VirtualService', 'reviews')).to.have.length(2);
    });
  });
});
