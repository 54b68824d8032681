/**
 * Which workloads need a push after a change: Istio's "does this proxy need a push" as a pure
 * predicate over two snapshots. A VirtualService or DestinationRule change affects only the
 * workloads whose sidecar scope sees one of its hosts (before or after the change); an
 * endpoint change touches only the endpoints document of the workloads that see the service.
 */
import { canonicalJson } from '../registry/hash.js';
import { hostsOverlap, resolveShortName } from '../registry/host.js';
import { selects } from '../registry/kube-objects.js';
import { type SidecarScope, scopeFor, vsHosts } from '../registry/scope.js';
import type {
  ConfigResource,
  MeshSnapshot,
  VirtualServiceConfig,
  WorkloadIdentity,
} from '../registry/types.js';
import { isExportedTo } from '../registry/visibility.js';

export interface SnapshotDiff {
  /** Changed config objects, as `Kind/ns/name`, with their old and new versions. */
  configs: Array<{ key: string; before?: ConfigResource<unknown>; after?: ConfigResource<unknown> }>;
  /** Hostnames of services added, removed or changed (ports, addresses, exportTo...). */
  services: Set<string>;
  /** Hostnames whose endpoints changed. */
  endpoints: Set<string>;
  meshChanged: boolean;
}

function indexConfigs(s: MeshSnapshot): Map<string, ConfigResource<unknown>> {
  const out = new Map<string, ConfigResource<unknown>>();
  for (const c of [
    ...s.virtualServices,
    ...s.destinationRules,
    ...s.sidecars,
    ...s.gateways,
    ...s.peerAuthentications,
    ...(s.authorizationPolicies ?? []),
    ...(s.requestAuthentications ?? []),
  ])
    out.set(`${c.kind}/${c.namespace}/${c.name}`, c as ConfigResource<unknown>);
  return out;
}

export function diffSnapshots(a: MeshSnapshot, b: MeshSnapshot): SnapshotDiff {
  const diff: SnapshotDiff = {
    configs: [],
    services: new Set(),
    endpoints: new Set(),
    meshChanged: canonicalJson(a.mesh) !== canonicalJson(b.mesh),
  };
  if (a.version === b.version) return diff;
  const ca = indexConfigs(a);
  const cb = indexConfigs(b);
  for (const key of new Set([...ca.keys(), ...cb.keys()])) {
    const x = ca.get(key);
    const y = cb.get(key);
    if (!x || !y || canonicalJson(x) !== canonicalJson(y))
      diff.configs.push({ key, ...(x ? { before: x } : {}), ...(y ? { after: y } : {}) });
  }
  const sa = new Map(a.services.map((s) => [s.key, s]));
  const sb = new Map(b.services.map((s) => [s.key, s]));
  for (const key of new Set([...sa.keys(), ...sb.keys()])) {
    const x = sa.get(key);
    const y = sb.get(key);
    if (!x || !y || canonicalJson(x) !== canonicalJson(y)) diff.services.add((x ?? y)!.hostname);
  }
  for (const key of new Set([...a.endpoints.keys(), ...b.endpoints.keys()])) {
    if (canonicalJson(a.endpoints.get(key) ?? []) !== canonicalJson(b.endpoints.get(key) ?? [])) {
      const svc = sb.get(key) ?? sa.get(key);
      if (svc) diff.endpoints.add(svc.hostname);
    }
  }
  return diff;
}

function scopeSeesHost(scope: SidecarScope, host: string): boolean {
  if (!host.startsWith('*')) {
    if (scope.byHost.has(host)) return true;
    // An exact host can still be inside a wildcard service (ServiceEntry `*.example.com`).
    return scope.services.some(
      (s) => s.service.hostname.startsWith('*') && hostsOverlap(host, s.service.hostname),
    );
  }
  return scope.services.some((s) => hostsOverlap(host, s.service.hostname));
}

function vsAffects(vs: VirtualServiceConfig, scope: SidecarScope): boolean {
  const key = `${vs.namespace}/${vs.name}`;
  if (!scope.virtualServices.some((v) => `${v.namespace}/${v.name}` === key)) return false;
  const hosts = vsHosts(vs);
  // A VirtualService for hosts outside the registry is served on port 80 (Istio's rule).
  if (!hosts.some((h) => scopeSeesHost(scope, h)))
    return scope.services.some((s) => s.ports.some((p) => p.port === 80));
  return true;
}

function drAffects(
  dr: ConfigResource<unknown>,
  scope: SidecarScope,
  w: WorkloadIdentity,
  root: string,
): boolean {
  const spec = dr.spec as {
    host?: string;
    exportTo?: string[];
    workloadSelector?: { matchLabels?: Record<string, string> };
  };
  if (!spec.host) return false;
  const selector = spec.workloadSelector?.matchLabels;
  if (selector && (dr.namespace !== w.namespace || !selects(selector, w.labels))) return false;
  const visible =
    dr.namespace === w.namespace ||
    (!selector && isExportedTo(spec.exportTo, dr.namespace, w.namespace)) ||
    (dr.namespace === root && w.namespace === root);
  return visible && scopeSeesHost(scope, resolveShortName(spec.host, dr.namespace));
}

export interface Affected {
  /** Workloads whose tables (routes, clusters, listeners) may change. */
  tables: WorkloadIdentity[];
  /** Workloads whose endpoints document may change (includes every workload in `tables`). */
  endpoints: WorkloadIdentity[];
}

export function affectedWorkloads(
  before: MeshSnapshot,
  after: MeshSnapshot,
  workloads: readonly WorkloadIdentity[],
  diff: SnapshotDiff = diffSnapshots(before, after),
): Affected {
  const out: Affected = { tables: [], endpoints: [] };
  const root = after.mesh.rootNamespace;
  for (const w of workloads) {
    const scopes = [scopeFor(before, w), scopeFor(after, w)];
    let tables = diff.meshChanged;
    for (const c of diff.configs) {
      if (tables) break;
      const kind = c.key.slice(0, c.key.indexOf('/'));
      const versions = [c.before, c.after].filter((x): x is ConfigResource<unknown> => !!x);
      if (kind === 'Sidecar')
        tables = versions.some((v) => v.namespace === w.namespace || v.namespace === root);
      else if (kind === 'VirtualService')
        tables = versions.some((v) => scopes.some((s) => vsAffects(v as VirtualServiceConfig, s)));
      else if (kind === 'DestinationRule')
        tables = versions.some((v) => scopes.some((s) => drAffects(v, s, w, root)));
      else if (
        kind === 'AuthorizationPolicy' ||
        kind === 'RequestAuthentication' ||
        kind === 'PeerAuthentication'
      )
        tables = versions.some((v) => v.namespace === w.namespace || v.namespace === root);
    }
    if (!tables)
      for (const h of diff.services) {
        if (scopes.some((s) => s.byHost.has(h))) {
          tables = true;
          break;
        }
        // The workload's own services (inbound side).
        const own = [...before.services, ...after.services].find(
          (s) => s.hostname === h && s.namespace === w.namespace,
        );
        if (own?.selector && selects(own.selector, w.labels)) {
          tables = true;
          break;
        }
      }
    if (tables) out.tables.push(w);
    let eps = tables;
    if (!eps) for (const h of diff.endpoints) if (scopes.some((s) => s.byHost.has(h))) eps = true;
    if (eps) out.endpoints.push(w);
  }
  return out;
}
