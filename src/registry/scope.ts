/**
 * Sidecar scope: the services and VirtualServices one workload's proxy sees, after exportTo
 * and the selected Sidecar's egress hosts (`ns/host`, with `.`, `*`, `~`). Cached per snapshot
 * and scope key, since every workload of a namespace without its own Sidecar shares one.
 */
import { hostsOverlap, resolveShortName } from './host.js';
import { selects } from './kube-objects.js';
import type {
  MeshService,
  MeshSnapshot,
  ServicePort,
  SidecarConfig,
  VirtualServiceConfig,
  WorkloadIdentity,
} from './types.js';
import { boundToMesh, byCreation, exportCategory, isExportedTo } from './visibility.js';

export interface ScopedService {
  service: MeshService;
  /** Ports this scope imports (all, or those of a port-scoped egress listener). */
  ports: ServicePort[];
}

export interface EgressHost {
  /** Namespace, `*` for any; `.` already replaced by the proxy namespace. */
  namespace: string;
  host: string;
  port?: number;
}

export interface SidecarScope {
  /** `sidecar:<ns>/<name>` or `default:<ns>`; equal keys = equal scopes. */
  key: string;
  namespace: string;
  sidecar?: SidecarConfig;
  /** Sorted by hostname; one service per hostname. */
  services: ScopedService[];
  byHost: Map<string, ScopedService>;
  /** Mesh-bound, visible, imported; in Istio's precedence order. */
  virtualServices: VirtualServiceConfig[];
  egress: EgressHost[];
}

/** Istio: Sidecars with a matching selector first (oldest first), else the namespace-wide one, else root's. */
export function selectSidecar(snap: MeshSnapshot, w: WorkloadIdentity): SidecarConfig | undefined {
  const inNs = snap.sidecars.filter((s) => s.namespace === w.namespace).sort(byCreation);
  const withSelector = inNs.find(
    (s) => s.spec.workloadSelector?.labels && selects(s.spec.workloadSelector.labels, w.labels),
  );
  if (withSelector) return withSelector;
  const nsWide = inNs.find((s) => !s.spec.workloadSelector?.labels);
  if (nsWide) return nsWide;
  return snap.sidecars
    .filter((s) => s.namespace === snap.mesh.rootNamespace && !s.spec.workloadSelector?.labels)
    .sort(byCreation)[0];
}

function egressOf(sidecar: SidecarConfig | undefined, namespace: string): EgressHost[] {
  const listeners = sidecar?.spec.egress;
  if (!listeners || listeners.length === 0) return [{ namespace: '*', host: '*' }];
  const out: EgressHost[] = [];
  for (const l of listeners) {
    for (const h of l.hosts ?? []) {
      const slash = h.indexOf('/');
      if (slash < 0) continue;
      const ns = h.slice(0, slash);
      if (ns === '~') continue;
      out.push({
        namespace: ns === '.' ? namespace : ns,
        host: h.slice(slash + 1).toLowerCase(),
        ...(l.port?.number ? { port: l.port.number } : {}),
      });
    }
  }
  return out;
}

const VS_HOSTS = new WeakMap<VirtualServiceConfig, string[]>();

/** VirtualService hosts resolved against its namespace (cached per object). */
export function vsHosts(vs: VirtualServiceConfig): string[] {
  let h = VS_HOSTS.get(vs);
  if (!h) {
    h = (vs.spec.hosts ?? []).map((x) => resolveShortName(x, vs.namespace));
    VS_HOSTS.set(vs, h);
  }
  return h;
}

const CACHE = new WeakMap<MeshSnapshot, Map<string, SidecarScope>>();

export function scopeFor(snap: MeshSnapshot, w: WorkloadIdentity): SidecarScope {
  const sidecar = selectSidecar(snap, w);
  const key = sidecar
    ? `sidecar:${sidecar.namespace}/${sidecar.name}@${w.namespace}`
    : `default:${w.namespace}`;
  let cache = CACHE.get(snap);
  if (!cache) {
    cache = new Map();
    CACHE.set(snap, cache);
  }
  let scope = cache.get(key);
  if (!scope) {
    scope = buildScope(snap, key, w.namespace, sidecar);
    cache.set(key, scope);
  }
  return scope;
}

function servicesVisibleTo(snap: MeshSnapshot, ns: string): MeshService[] {
  const candidates = snap.services
    .filter((s) => isExportedTo(s.exportTo, s.namespace, ns))
    .map((s) => ({ s, cat: exportCategory(s.exportTo, s.namespace, ns) }))
    .sort(
      (a, b) =>
        a.cat - b.cat ||
        (a.s.creationTimestamp ?? '').localeCompare(b.s.creationTimestamp ?? '') ||
        a.s.namespace.localeCompare(b.s.namespace),
    );
  const byHost = new Map<string, MeshService>();
  for (const { s } of candidates) {
    const existing = byHost.get(s.hostname);
    // First wins, but a Kubernetes Service beats a ServiceEntry squatting on its name.
    if (!existing || (existing.registry !== 'Kubernetes' && s.registry === 'Kubernetes'))
      byHost.set(s.hostname, s);
  }
  return [...byHost.values()];
}

function matchesEgress(e: EgressHost, ns: string, host: string): boolean {
  return (e.namespace === '*' || e.namespace === ns) && hostsOverlap(host, e.host);
}

function buildScope(
  snap: MeshSnapshot,
  key: string,
  ns: string,
  sidecar: SidecarConfig | undefined,
): SidecarScope {
  const egress = egressOf(sidecar, ns);
  const visible = servicesVisibleTo(snap, ns);
  const imported = new Map<string, ScopedService>();
  const importPorts = (svc: MeshService, port: number | undefined) => {
    const ports = port === undefined ? svc.ports : svc.ports.filter((p) => p.port === port);
    if (ports.length === 0) return;
    const prev = imported.get(svc.hostname);
    if (!prev) imported.set(svc.hostname, { service: svc, ports });
    else if (prev.ports !== svc.ports) {
      const merged = new Map(prev.ports.map((p) => [p.port, p]));
      for (const p of ports) merged.set(p.port, p);
      prev.ports = [...merged.values()].sort((a, b) => a.port - b.port);
    }
  };
  for (const svc of visible) {
    for (const e of egress) if (matchesEgress(e, svc.namespace, svc.hostname)) importPorts(svc, e.port);
  }

  const virtualServices = snap.virtualServices
    .filter(
      (vs) =>
        boundToMesh(vs) &&
        isExportedTo(vs.spec.exportTo, vs.namespace, ns) &&
        egress.some((e) => vsHosts(vs).some((h) => matchesEgress(e, vs.namespace, h))),
    )
    .map((vs) => ({ vs, cat: exportCategory(vs.spec.exportTo, vs.namespace, ns) }))
    .sort((a, b) => a.cat - b.cat || byCreation(a.vs, b.vs))
    .map((x) => x.vs);

  // Istio also imports the services an imported VirtualService routes to, when visible.
  if (sidecar) {
    const visibleByHost = new Map(visible.map((s) => [s.hostname, s]));
    for (const vs of virtualServices) {
      for (const r of [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])]) {
        for (const d of r.route ?? []) {
          const h = d.destination?.host;
          const svc = h ? visibleByHost.get(resolveShortName(h, vs.namespace)) : undefined;
          if (svc && !imported.has(svc.hostname)) importPorts(svc, undefined);
        }
      }
    }
  }

  const services = [...imported.values()].sort((a, b) =>
    a.service.hostname < b.service.hostname ? -1 : a.service.hostname > b.service.hostname ? 1 : 0,
  );
  return {
    key,
    namespace: ns,
    ...(sidecar ? { sidecar } : {}),
    services,
    byHost: new Map(services.map((s) => [s.service.hostname, s])),
    virtualServices,
    egress,
  };
}
