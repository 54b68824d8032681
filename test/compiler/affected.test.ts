import { expect } from 'chai';
import { affectedWorkloads, compileForWorkload, diffSnapshots } from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import { loadCase } from './golden.js';

const names = (ws: Array<{ namespace: string; name: string }>) =>
  ws.map((w) => `${w.namespace}/${w.name}`).sort();

function vs(ns: string, host: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: `vs-${host.split('.')[0]}`, namespace: ns },
    spec: { hosts: [host], http: [{ route: [{ destination: { host } }], timeout: '1s' }], ...extra },
  };
}

describe('affectedWorkloads (push scoping)', () => {
  const base = loadCase('sidecar-egress');
  const all = (() => {
    const c = loadCase('sidecar-egress');
    return c.workloads;
  })();
  const objects = base.objects;

  it('an unchanged snapshot affects nobody', () => {
    const r = affectedWorkloads(base.snapshot, buildSnapshot([...objects].reverse()), all);
    expect(r.tables).to.deep.equal([]);
    expect(r.endpoints).to.deep.equal([]);
  });

  it('a VirtualService for ratings reaches only proxies whose Sidecar lets them see ratings', () => {
    const next = buildSnapshot([...objects, vs('shop', 'ratings')]);
    const r = affectedWorkloads(base.snapshot, next, all);
    // productpage's Sidecar imports reviews and details only.
    expect(names(r.tables)).to.deep.equal(['other/client-v1-abc', 'shop/reviews-v1']);
  });

  it('a VirtualService exported only to its namespace reaches only that namespace', () => {
    const next = buildSnapshot([...objects, vs('shop', 'reviews', { exportTo: ['.'] })]);
    expect(names(affectedWorkloads(base.snapshot, next, all).tables)).to.deep.equal([
      'shop/productpage-v1',
      'shop/reviews-v1',
    ]);
  });

  it('a VirtualService bound only to a gateway reaches no sidecar', () => {
    const next = buildSnapshot([...objects, vs('shop', 'reviews', { gateways: ['ingress'] })]);
    expect(affectedWorkloads(base.snapshot, next, all).tables).to.deep.equal([]);
  });

  it('a PeerAuthentication reaches the workloads of its namespace (STRICT applies without a restart)', () => {
    const strict = {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'default', namespace: 'shop' },
      spec: { mtls: { mode: 'STRICT' } },
    };
    const next = buildSnapshot([...objects, strict]);
    expect(names(affectedWorkloads(base.snapshot, next, all).tables)).to.deep.equal([
      'shop/productpage-v1',
      'shop/reviews-v1',
    ]);
  });

  it('an endpoint change touches endpoints documents only, of the workloads that see the service', () => {
    const changed = objects.map((o) => {
      const x = o as { kind?: string; metadata?: { name?: string }; status?: { podIP?: string } };
      return x.kind === 'Pod' && x.metadata?.name?.startsWith('ratings-')
        ? { ...x, status: { ...x.status, podIP: '10.9.9.9' } }
        : o;
    });
    const next = buildSnapshot(changed);
    const d = diffSnapshots(base.snapshot, next);
    expect([...d.endpoints]).to.deep.equal(['ratings.shop.svc.cluster.local']);
    const r = affectedWorkloads(base.snapshot, next, all, d);
    expect(r.tables).to.deep.equal([]);
    expect(names(r.endpoints)).to.deep.equal(['other/client-v1-abc', 'shop/reviews-v1']);
  });

  it('agrees with recompiling: unaffected workloads get byte-identical tables', () => {
    const next = buildSnapshot([...objects, vs('shop', 'ratings')]);
    const r = affectedWorkloads(base.snapshot, next, all);
    for (const w of all) {
      const same =
        JSON.stringify(compileForWorkload(base.snapshot, w).tables) ===
        JSON.stringify(compileForWorkload(next, w).tables);
      expect(same, `${w.name}`).to.equal(!r.tables.includes(w));
    }
  });
});
