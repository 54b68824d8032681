/**
 * planPublish at the issue's scale (1,000 services, 10,000 endpoints, 2,000 workloads): no
 * ConfigMap over 1 MiB, an endpoint change touches only shards (never a tables ConfigMap),
 * and the agent-side assembly gives back exactly what the compiler produced.
 */
import { expect } from 'chai';
import { ISSUE_SHAPE, syntheticMesh } from '../../bench/compiler/mesh.js';
import { compileForWorkload } from '../../src/compiler/index.js';
import {
  assembleEndpoints,
  type ClassResult,
  classId,
  MAX_CONFIGMAP_BYTES,
  type PublishPlan,
  planPublish,
  readShardConfigMap,
  readTablesConfigMap,
  type ShardData,
} from '../../src/publish/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { WorkloadIdentity } from '../../src/registry/types.js';

function compileAll(objects: unknown[], workloads: WorkloadIdentity[]): ClassResult[] {
  const snap = buildSnapshot(objects);
  return workloads.map((w) => ({ id: classId(w), workload: w, result: compileForWorkload(snap, w) }));
}

function shardsOf(plan: PublishPlan): Map<string, ShardData> {
  const out = new Map<string, ShardData>();
  for (const s of plan.shards) {
    const r = readShardConfigMap(s);
    if (!r.ok) throw new Error(r.error);
    out.set(s.name, r.value);
  }
  return out;
}

describe('publish plan', () => {
  let mesh: ReturnType<typeof syntheticMesh>;
  let classes: ClassResult[];
  let plan: PublishPlan;

  before(function () {
    this.timeout(120_000);
    mesh = syntheticMesh(ISSUE_SHAPE);
    classes = compileAll(mesh.objects, mesh.workloads);
    plan = planPublish(classes, { namespace: 'istio-system' });
  });

  it('keeps every ConfigMap under 1 MiB at 1,000 services / 10,000 endpoints', () => {
    expect(plan.oversized).to.deep.equal([]);
    const biggest = Math.max(...[...plan.tables, ...plan.shards].map((c) => c.bytes));
    expect(biggest).to.be.below(MAX_CONFIGMAP_BYTES);
    expect(plan.shards.length).to.be.greaterThan(1);
    expect(plan.tables.length).to.equal(new Set(classes.map((c) => c.id)).size);
  });

  it('assembles, per class, exactly the endpoints the compiler produced', () => {
    const shards = shardsOf(plan);
    for (const cm of plan.tables.filter((_, i) => i % 97 === 0)) {
      const read = readTablesConfigMap(cm);
      if (!read.ok) throw new Error(read.error);
      const { table, missing } = assembleEndpoints(read.value.index, shards);
      expect(missing).to.deep.equal([]);
      const c = classes.find((x) => cm.name.endsWith(x.id))!;
      expect(table.clusters).to.deep.equal(c.result.endpoints.clusters);
      expect((read.value.tables as { version: string }).version).to.equal(c.result.tables.version);
    }
  });

  it('rewrites only shards when endpoints change', function () {
    this.timeout(120_000);
    // Move one endpoint of svc-0 to another IP.
    const objects = mesh.objects.map((o) => {
      const x = o as {
        kind?: string;
        metadata?: { name?: string };
        endpoints?: Array<{ addresses: string[] }>;
      };
      if (x.kind !== 'EndpointSlice' || x.metadata?.name !== 'svc-0-x') return o;
      return {
        ...x,
        endpoints: x.endpoints!.map((e, i) => (i === 0 ? { ...e, addresses: ['10.250.0.1'] } : e)),
      };
    });
    const next = planPublish(compileAll(objects, mesh.workloads), {
      namespace: 'istio-system',
      previousShards: plan.shardCount,
    });
    const hashes = (p: PublishPlan, which: 'tables' | 'shards') =>
      new Map(p[which].map((c) => [c.name, c.hash] as const));
    expect(hashes(next, 'tables')).to.deep.equal(hashes(plan, 'tables'));
    const before = hashes(plan, 'shards');
    const changed = [...hashes(next, 'shards')].filter(([n, h]) => before.get(n) !== h);
    // svc-0's clusters holding that endpoint: ports 8080 and 9090, all and subset v1.
    expect(changed.length).to.be.within(1, 4);
  });

  it('gives classes that disagree on a cluster their own pool key', () => {
    const [a, b] = classes as [ClassResult, ClassResult];
    const name = Object.keys(a.result.endpoints.clusters).find((n) => n.startsWith('outbound|'))!;
    const other = {
      ...b,
      result: {
        ...b.result,
        endpoints: { ...b.result.endpoints, clusters: { ...b.result.endpoints.clusters, [name]: [] } },
      },
    };
    const p = planPublish([a, other], { namespace: 'istio-system' });
    const shards = shardsOf(p);
    for (const [c, cm] of [
      [a, p.tables.find((t) => t.name.endsWith(a.id))!],
      [other, p.tables.find((t) => t.name.endsWith(other.id))!],
    ] as const) {
      const read = readTablesConfigMap(cm);
      if (!read.ok) throw new Error(read.error);
      const { table } = assembleEndpoints(read.value.index, shards);
      expect(table.clusters[name]).to.deep.equal(c.result.endpoints.clusters[name]);
    }
  });
});
