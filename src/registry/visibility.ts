/**
 * Who sees what: `exportTo` of services and config (Istio's visibility.Instance semantics:
 * `*` everyone, `.` own namespace, `~` nobody, else the listed namespaces; empty = mesh
 * default `*`), and the `mesh` gateway binding of VirtualServices.
 */
import type { VirtualServiceConfig } from './types.js';

export function isExportedTo(
  exportTo: readonly string[] | undefined,
  owner: string,
  client: string,
): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  if (exportTo.includes('*')) return true;
  if (exportTo.includes('~')) return false;
  if (owner === client && exportTo.includes('.')) return true;
  return exportTo.includes(client);
}

/**
 * Istio orders config visible to a namespace as: private to that namespace, explicitly
 * exported to it, public. 0/1/2 here; lower wins on duplicates.
 */
export function exportCategory(
  exportTo: readonly string[] | undefined,
  owner: string,
  client: string,
): number {
  if (!exportTo || exportTo.length === 0 || exportTo.includes('*')) return owner === client ? 0 : 2;
  if (owner === client) return 0;
  return 1;
}

export const MESH_GATEWAY = 'mesh';

/** A VirtualService applies to sidecars when `gateways` is empty or lists `mesh`. */
export function boundToMesh(vs: VirtualServiceConfig): boolean {
  const g = vs.spec.gateways;
  return !g || g.length === 0 || g.includes(MESH_GATEWAY);
}

/** Stable order of config objects: creation time, then name, then namespace (as Istio). */
export function byCreation<T extends { creationTimestamp?: string; name: string; namespace: string }>(
  a: T,
  b: T,
): number {
  const ta = a.creationTimestamp ?? '';
  const tb = b.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0;
}
