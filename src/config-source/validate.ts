/**
 * Filters loaded documents before they reach the snapshot: mesh objects that fail
 * src/validation are skipped (their last valid version is kept, if any), so one bad edit
 * never takes down routing for the rest of the mesh.
 */
import { formatFinding, refOf, validateResource } from '../validation/resource.js';
import type { RejectedDocument } from './types.js';

export interface Accepted {
  objects: unknown[];
  rejected: RejectedDocument[];
}

function keyOf(o: unknown): string {
  const r = refOf(o);
  const api = (o as { apiVersion?: unknown }).apiVersion;
  const group = typeof api === 'string' && api.includes('/') ? api.slice(0, api.indexOf('/')) : '';
  return `${group}/${r.kind}/${r.namespace}/${r.name}`;
}

/**
 * `previous` maps object keys to their last accepted version (updated in place).
 * `rootNamespace` is passed to the validators (mesh-wide rules live there).
 */
export function acceptDocuments(
  docs: ReadonlyArray<{ source: string; object: unknown }>,
  previous: Map<string, unknown>,
  rootNamespace?: string,
): Accepted {
  const out: Accepted = { objects: [], rejected: [] };
  const seen = new Set<string>();
  for (const d of docs) {
    const key = keyOf(d.object);
    const verdict = validateResource(d.object, rootNamespace ? { rootNamespace } : {});
    const errors = verdict.findings.filter((f) => f.severity === 'error');
    if (verdict.meshKind && errors.length) {
      const prev = previous.get(key);
      out.rejected.push({
        source: d.source,
        messages: errors.map((f) => formatFinding(verdict.ref, f)),
        keptPrevious: prev !== undefined,
      });
      if (prev !== undefined && !seen.has(key)) {
        out.objects.push(prev);
        seen.add(key);
      }
      continue;
    }
    if (seen.has(key)) continue; // a duplicate object: the first file (sorted) wins
    seen.add(key);
    previous.set(key, d.object);
    out.objects.push(d.object);
  }
  // Objects deleted from the input are forgotten (so a later invalid re-add keeps nothing).
  for (const key of [...previous.keys()]) if (!seen.has(key)) previous.delete(key);
  return out;
}
