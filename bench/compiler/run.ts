/**
 * Compiler benchmark (issue 5): full compile of a synthetic mesh of 1,000 services, 10,000
 * endpoints, 2,000 workloads (200 label sets), 300 VirtualServices, 300 DestinationRules;
 * RSS; and how many workloads one VirtualService change affects. Run:
 *   npx tsx bench/compiler/run.ts [--sidecars]
 */
import {
  affectedWorkloads,
  type CompileResult,
  compileForWorkload,
  diffSnapshots,
} from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import { ISSUE_SHAPE, syntheticMesh } from './mesh.js';

const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
const ms = (t: number) => `${t.toFixed(0)} ms`;

function run(sidecars: boolean): void {
  const shape = { ...ISSUE_SHAPE, sidecars };
  const { objects, workloads } = syntheticMesh(shape);
  const rss0 = process.memoryUsage().rss;
  let t = performance.now();
  const snap = buildSnapshot(objects);
  const tSnap = performance.now() - t;
  const endpoints = [...snap.endpoints.values()].reduce((n, l) => n + l.length, 0);

  t = performance.now();
  const results: CompileResult[] = workloads.map((w) => compileForWorkload(snap, w));
  const tCompile = performance.now() - t;
  const rss1 = process.memoryUsage().rss;
  const distinct = new Set(results.map((r) => r.tables.routeConfigs[0])).size;
  const sample = results[0]!;
  const tablesBytes = JSON.stringify(sample.tables).length;
  const endpointsBytes = JSON.stringify(sample.endpoints).length;

  // One VirtualService edit (weights 90/10 -> 50/50), as `kubectl apply` would deliver it.
  const vsIndex = objects.findIndex((o) => (o as { kind?: string }).kind === 'VirtualService');
  const edited = structuredClone(objects[vsIndex]) as {
    spec: { http: Array<{ route: Array<{ weight?: number }> }> };
  };
  edited.spec.http[1]!.route[0]!.weight = 50;
  edited.spec.http[1]!.route[1]!.weight = 50;
  const nextObjects = objects.slice();
  nextObjects[vsIndex] = edited;
  t = performance.now();
  const next = buildSnapshot(nextObjects);
  const tSnap2 = performance.now() - t;
  t = performance.now();
  const diff = diffSnapshots(snap, next);
  const affected = affectedWorkloads(snap, next, workloads, diff);
  const tAffected = performance.now() - t;
  t = performance.now();
  for (const w of affected.tables) compileForWorkload(next, w);
  const tRecompile = performance.now() - t;

  console.log(
    `\n## compiler, ${sidecars ? 'with per-namespace Sidecars (./*, istio-system/*)' : 'default scope (every proxy sees every service)'}`,
  );
  console.log(
    `mesh: ${snap.services.length} services, ${endpoints} endpoints, ${workloads.length} workloads (${shape.labelSets} label sets), ` +
      `${snap.virtualServices.length} VirtualServices, ${snap.destinationRules.length} DestinationRules`,
  );
  console.log(`snapshot build (10k pods + slices -> registry): ${ms(tSnap)}`);
  console.log(
    `full compile, ${workloads.length} workloads: ${ms(tCompile)} (${(tCompile / workloads.length).toFixed(2)} ms/workload), ${distinct} distinct outbound route sets`,
  );
  console.log(
    `RSS: ${mb(rss0)} before snapshot, ${mb(rss1)} after compiling all (results held); heap used ${mb(process.memoryUsage().heapUsed)}`,
  );
  console.log(
    `one workload's documents: tables ${(tablesBytes / 1024).toFixed(0)} KiB, endpoints ${(endpointsBytes / 1024).toFixed(0)} KiB (JSON)`,
  );
  console.log(
    `one VirtualService change: snapshot ${ms(tSnap2)}, diff+affected ${ms(tAffected)} -> ${affected.tables.length}/${workloads.length} workloads need new tables ` +
      `(${affected.endpoints.length} endpoints docs), recompiling them ${ms(tRecompile)}`,
  );
}

run(process.argv.includes('--sidecars'));
