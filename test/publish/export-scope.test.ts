/**
 * exportTo and the endpoint shards: endpoints of a service exported to some namespaces only
 * live in shards of their own scope (readable only by those namespaces' service accounts),
 * never in the mesh-wide shards, and a workload elsewhere neither gets them in its index nor
 * needs their shards.
 */
import { expect } from 'chai';
import { compileForWorkload } from '../../src/compiler/index.js';
import {
  assembleEndpoints,
  type ClassResult,
  classId,
  exportScopes,
  planPublish,
  readShardConfigMap,
  readTablesConfigMap,
  type ShardData,
  scopeId,
  shardsOf,
} from '../../src/publish/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { WorkloadIdentity } from '../../src/registry/types.js';

const service = (ns: string, name: string, ip: string, exportTo?: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: {
    name,
    namespace: ns,
    ...(exportTo ? { annotations: { 'networking.istio.io/exportTo': exportTo } } : {}),
  },
  spec: { clusterIP: ip, selector: { app: name }, ports: [{ name: 'http', port: 8080 }] },
});

const slice = (ns: string, name: string, address: string) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${name}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
  ports: [{ name: 'http', port: 8080 }],
  endpoints: [{ addresses: [address], conditions: { ready: true } }],
});

const objects = [
  service('team-a', 'ledger', '10.96.0.1', '.'),
  slice('team-a', 'ledger', '10.1.0.1'),
  service('team-a', 'audit', '10.96.0.2', 'team-a,team-c'),
  slice('team-a', 'audit', '10.1.0.2'),
  service('team-b', 'catalog', '10.96.0.3'),
  slice('team-b', 'catalog', '10.1.0.3'),
];

const workload = (namespace: string): WorkloadIdentity => ({
  name: `client-${namespace}`,
  namespace,
  labels: { app: 'client' },
  serviceAccount: 'default',
});

const LEDGER = 'outbound|8080||ledger.team-a.svc.cluster.local';
const AUDIT = 'outbound|8080||audit.team-a.svc.cluster.local';
const CATALOG = 'outbound|8080||catalog.team-b.svc.cluster.local';

describe('publish plan: exportTo scopes of endpoint shards', () => {
  const snap = buildSnapshot(objects);
  const classes: ClassResult[] = ['team-a', 'team-b', 'team-c'].map((ns) => {
    const w = workload(ns);
    return { id: classId(w), workload: w, result: compileForWorkload(snap, w) };
  });
  const scopes = exportScopes(snap.services);
  const plan = planPublish(classes, { namespace: 'istio-system', exportScopes: scopes });
  const indexOf = (ns: string) => {
    const cm = plan.tables.find((t) => t.namespace === ns)!;
    const r = readTablesConfigMap(cm);
    if (!r.ok) throw new Error(r.error);
    return r.value.index;
  };
  const shards = new Map<string, ShardData>();
  for (const s of plan.shards) {
    const r = readShardConfigMap(s);
    if (!r.ok) throw new Error(r.error);
    shards.set(s.name, r.value);
  }

  it('resolves exportTo per host: "." to the service namespace, names as given, public hosts absent', () => {
    expect([...scopes.entries()].sort()).to.deep.equal([
      ['audit.team-a.svc.cluster.local', ['team-a', 'team-c']],
      ['ledger.team-a.svc.cluster.local', ['team-a']],
    ]);
  });

  it('puts exported-to-some endpoints only in their scope shards, never the mesh-wide ones', () => {
    const a = scopeId(['team-a']);
    const ac = scopeId(['team-a', 'team-c']);
    expect([...plan.scopes.keys()].sort()).to.deep.equal([a, ac].sort());
    expect(plan.scopes.get(a)!.namespaces).to.deep.equal(['team-a']);
    expect(plan.scopes.get(ac)!.namespaces).to.deep.equal(['team-a', 'team-c']);
    const publicKeys = plan.shards
      .filter((s) => /^isthmus-endpoints-\d+$/.test(s.name))
      .flatMap((s) => Object.keys(shards.get(s.name)!));
    expect(publicKeys).to.include(CATALOG);
    expect(publicKeys.some((k) => k.includes('ledger') || k.includes('audit'))).to.equal(false);
    const scopedA = plan.scopes.get(a)!.names.flatMap((n) => Object.keys(shards.get(n)!));
    expect(scopedA).to.deep.equal([`@${a}/${LEDGER}`]);
  });

  it('gives a workload only the shards of services exported to its namespace', () => {
    const b = indexOf('team-b');
    expect(Object.keys(b.pooled)).to.not.include(LEDGER).and.not.include(AUDIT);
    expect(b.scopes).to.equal(undefined);
    expect(shardsOf(b).every((n) => /^isthmus-endpoints-\d+$/.test(n))).to.equal(true);
    const c = indexOf('team-c');
    expect(Object.keys(c.pooled)).to.include(AUDIT).and.not.include(LEDGER);
    expect(shardsOf(c)).to.include.members(plan.scopes.get(scopeId(['team-a', 'team-c']))!.names);
    expect(shardsOf(c)).to.not.include.members(plan.scopes.get(scopeId(['team-a']))!.names);
  });

  it('assembles, per class, exactly the endpoints the compiler produced', () => {
    for (const c of classes) {
      const { table, missing } = assembleEndpoints(indexOf(c.workload.namespace), shards);
      expect(missing).to.deep.equal([]);
      expect(table.clusters).to.deep.equal(c.result.endpoints.clusters);
    }
  });
});
