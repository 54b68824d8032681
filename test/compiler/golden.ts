/**
 * Golden-test plumbing: a case directory holds `input.yaml` (its first line may say
 * `# base: <name>` to also load `testdata/_base/<name>.yaml`, and a `# workloads: ns/name, ...`
 * line limits which workloads are compiled); every (selected) workload found among its Pods is compiled to `<ns>.<workload>.tables.json`, `.endpoints.json` and, when the compiler
 * reported anything, `.warnings.txt`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDocuments } from '../../src/cli/documents.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { MeshSnapshot, WorkloadIdentity } from '../../src/registry/types.js';
import { workloadsFromPods } from '../../src/registry/workloads.js';

export const TESTDATA = join(import.meta.dirname, 'testdata');

export interface GoldenCase {
  name: string;
  dir: string;
  objects: unknown[];
  snapshot: MeshSnapshot;
  workloads: WorkloadIdentity[];
}

export function loadCase(name: string): GoldenCase {
  const dir = join(TESTDATA, name);
  const input = join(dir, 'input.yaml');
  const paths = [input];
  const text = readFileSync(input, 'utf8');
  const base = /^# base: (\S+)/m.exec(text);
  const only = /^# workloads: (.+)$/m
    .exec(text)?.[1]
    ?.split(',')
    .map((s) => s.trim());
  if (base) paths.unshift(join(TESTDATA, '_base', `${base[1]}.yaml`));
  const loaded = loadDocuments(paths);
  if (loaded.errors.length) throw new Error(loaded.errors.join('\n'));
  const objects = loaded.docs.map((d) => d.object);
  const workloads = workloadsFromPods(objects).filter(
    (w) => !only || only.includes(`${w.namespace}/${w.name}`),
  );
  if (only && workloads.length !== only.length)
    throw new Error(`${name}: workloads ${only.join(', ')} not all found`);
  return { name, dir, objects, snapshot: buildSnapshot(objects), workloads };
}

export function caseNames(): string[] {
  return readdirSync(TESTDATA)
    .filter((d) => !d.startsWith('_') && existsSync(join(TESTDATA, d, 'input.yaml')))
    .sort();
}

export const pretty = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
