/** The compiler (pure): MeshSnapshot + workload -> src/tables documents, and push scoping. */
export { type Affected, affectedWorkloads, diffSnapshots, type SnapshotDiff } from './affected.js';
export { type CompileResult, compileForWorkload } from './compile.js';
export type { CompileWarning } from './warnings.js';
