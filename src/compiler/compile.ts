/**
 * compileForWorkload: MeshSnapshot + workload identity -> the proxy's tables and endpoints
 * (src/tables). Pure and deterministic: equal inputs give byte-identical JSON, and `version`
 * is a hash of the content. Parts shared by many workloads (the outbound side of a sidecar
 * scope, the inbound side of a label set) are built once per snapshot and reused.
 */
import { DEFAULT_TRUST_DOMAIN } from '../api/mesh.js';
import { canonicalJson, getOrCreate, shortHash } from '../registry/hash.js';
import { type SidecarScope, scopeFor } from '../registry/scope.js';
import type { MeshSettings, MeshSnapshot, WorkloadIdentity } from '../registry/types.js';
import { workloadKey } from '../registry/workloads.js';
import {
  type Cluster,
  ENDPOINTS_API_VERSION,
  type Endpoint,
  type EndpointTable,
  type InboundMtls,
  type Listener,
  PASSTHROUGH_CLUSTER,
  type ProxyTables,
  type RouteConfig,
  TABLES_API_VERSION,
  type Telemetry,
  type Workload,
} from '../tables/index.js';
import { parseClusterName } from '../tables/names.js';
import { buildOutboundClusters } from './clusters.js';
import { destinationRuleIndex, selectorRulesFingerprint } from './destination-rules.js';
import { podLocality, priorityLabelValue } from './endpoints.js';
import { hasSourceConditions, sourceMatches } from './http-routes.js';
import { buildInbound } from './inbound.js';
import { outboundHttpListener, tcpListeners } from './listeners.js';
import { inboundMtlsFor } from './peer-authentication.js';
import { inboundSecurityFor, withSecurityWarnings } from './security.js';
import { buildRouteConfigs, newRouteMemo, type RouteMemo, vsOwners } from './virtual-hosts.js';
import { type CompileWarning, Warnings } from './warnings.js';

export interface CompileResult {
  tables: ProxyTables;
  endpoints: EndpointTable;
  /** Parts of the config not applied for this workload, with the reason. */
  warnings: CompileWarning[];
}

interface Part {
  listeners: Listener[];
  routeConfigs: RouteConfig[];
  /** Sorted by name. */
  clusters: Cluster[];
  endpoints: Map<string, Endpoint[]>;
  hash: string;
  endpointsHash: string;
  warnings: CompileWarning[];
}

interface Caches {
  outbound: Map<string, Part>;
  inbound: Map<string, Part>;
  assembled: Map<string, Assembled>;
  routes: RouteMemo;
}

const CACHES = new WeakMap<MeshSnapshot, Caches>();

function caches(snap: MeshSnapshot): Caches {
  return getOrCreate(CACHES, snap, () => ({
    outbound: new Map(),
    inbound: new Map(),
    assembled: new Map(),
    routes: newRouteMemo(),
  }));
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Which source-dependent matches (sourceLabels/sourceNamespace) hold for this workload. */
function sourceFingerprint(scope: SidecarScope, w: WorkloadIdentity): string {
  const parts: string[] = [];
  for (const vs of scope.virtualServices) {
    if (!hasSourceConditions(vs)) continue;
    let bits = '';
    for (const r of vs.spec.http ?? [])
      for (const m of r.match ?? []) bits += sourceMatches(m, w) ? '1' : '0';
    for (const r of vs.spec.tcp ?? []) for (const m of r.match ?? []) bits += sourceMatches(m, w) ? '1' : '0';
    for (const r of vs.spec.tls ?? []) for (const m of r.match ?? []) bits += sourceMatches(m, w) ? '1' : '0';
    parts.push(`${vs.namespace}/${vs.name}:${bits}`);
  }
  return parts.join(';');
}

/**
 * Content hash of a shared unit (a virtual host, a cluster, an endpoint list), memoized per
 * object: units are shared by many proxies, so each is serialized once per snapshot.
 */
const UNIT_HASH = new WeakMap<object, string>();
function unitHash(o: object): string {
  return getOrCreate(UNIT_HASH, o, () => shortHash(canonicalJson(o)));
}

function finishPart(p: Omit<Part, 'hash' | 'endpointsHash'>): Part {
  const tables: string[] = [canonicalJson(p.listeners)];
  for (const rc of p.routeConfigs)
    tables.push(`${rc.name}|${rc.port ?? ''}`, ...rc.virtualHosts.map(unitHash));
  for (const c of p.clusters) tables.push(unitHash(c));
  const eps: string[] = [];
  for (const c of p.clusters) {
    const list = p.endpoints.get(c.name);
    if (list) eps.push(c.name, unitHash(list));
  }
  return { ...p, hash: shortHash(tables.join('\n')), endpointsHash: shortHash(eps.join('\n')) };
}

function buildOutbound(snap: MeshSnapshot, scope: SidecarScope, w: WorkloadIdentity, memo: RouteMemo): Part {
  const warnings = new Warnings();
  const idx = destinationRuleIndex(snap);
  const set = buildOutboundClusters(snap, idx, scope.services, w.namespace, w.labels, warnings.warn);
  const routes = buildRouteConfigs(snap.mesh, scope, w, warnings.warn, memo);
  const tcp = tcpListeners(
    scope.services,
    vsOwners(scope),
    { workload: w, services: scope.byHost, allowAny: snap.mesh.outboundTrafficPolicy === 'ALLOW_ANY' },
    warnings.warn,
  );
  // Routes may name clusters that do not exist (unknown host or subset). Istio leaves them
  // dangling (503 NC); the tables contract needs them defined, so they exist without endpoints.
  for (const [name, resource] of [...routes.referenced, ...tcp.referenced]) {
    if (set.clusters.has(name)) continue;
    if (name === PASSTHROUGH_CLUSTER) {
      set.clusters.set(name, { name, lbPolicy: 'PASSTHROUGH' });
      continue;
    }
    const key = parseClusterName(name);
    const svc = key ? scope.byHost.get(key.host)?.service : undefined;
    if (resource) {
      const why = !svc
        ? `host ${key?.host} is not a service visible to namespace ${w.namespace}`
        : key?.subset
          ? `subset "${key.subset}" of ${key.host} is not defined by any DestinationRule`
          : `port ${key?.port} is not a port of ${key?.host}`;
      warnings.warn(resource, `${why}; requests to it fail with 503`, 'ReferencedResourceNotFound');
    }
    set.clusters.set(
      name,
      svc ? { name, service: { host: svc.hostname, name: svc.name, namespace: svc.namespace } } : { name },
    );
    set.endpoints.set(name, []);
  }
  const listeners = [outboundHttpListener(), ...tcp.listeners].sort(byName);
  return finishPart({
    listeners,
    routeConfigs: routes.routeConfigs,
    clusters: [...set.clusters.values()].sort(byName),
    endpoints: set.endpoints,
    warnings: warnings.items,
  });
}

function mergeSorted<T extends { name: string }>(a: readonly T[], b: readonly T[]): T[] {
  if (b.length === 0) return a.slice();
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(byName(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

function nodeOf(w: WorkloadIdentity): Workload {
  const labels: Record<string, string> = {};
  for (const k of Object.keys(w.labels).sort()) labels[k] = w.labels[k]!;
  const app = w.labels.app ?? w.labels['app.kubernetes.io/name'];
  const version = w.labels.version ?? w.labels['app.kubernetes.io/version'];
  // The istio-locality label wins over the node's topology labels (Istio's order).
  const locality = podLocality(w.labels) ?? w.locality;
  return {
    name: w.name,
    namespace: w.namespace,
    ...(app ? { app } : {}),
    ...(version ? { version } : {}),
    principal: `spiffe://${DEFAULT_TRUST_DOMAIN}/ns/${w.namespace}/sa/${w.serviceAccount}`,
    labels,
    ...(locality ? { locality } : {}),
  };
}

/** Everything but `node`: shared by all workloads of one class (namespace + labels + SA). */
interface Assembled {
  listeners: Listener[];
  routeConfigs: RouteConfig[];
  clusters: Cluster[];
  endpoints: EndpointTable;
  hash: string;
  warnings: CompileWarning[];
  /** PeerAuthentication resolved for this workload (undefined = PERMISSIVE). */
  inboundMtls: InboundMtls | undefined;
  /** Some cluster has a failoverPriority entry to fill with the proxy's own label value. */
  failoverPriority: boolean;
}

/**
 * Clusters with `localityLb.failoverPriority` get the proxy's own value for each bare label
 * key (Istio compares endpoint labels with the proxy's, region/zone/subzone from localities).
 * Other clusters stay shared.
 */
function withFailoverPriority(clusters: Cluster[], node: Workload): Cluster[] {
  return clusters.map((c) => {
    const fp = c.localityLb?.failoverPriority;
    if (!fp?.some((e) => e.value === undefined)) return c;
    const failoverPriority = fp.map((e) =>
      e.value !== undefined
        ? e
        : { label: e.label, value: priorityLabelValue(node.labels ?? {}, node.locality, e.label) },
    );
    return { ...c, localityLb: { ...c.localityLb, failoverPriority } };
  });
}

function assemble(snap: MeshSnapshot, c: Caches, w: WorkloadIdentity, inKey: string): Assembled {
  const scope = scopeFor(snap, w);
  const outKey = `${scope.key}|${selectorRulesFingerprint(destinationRuleIndex(snap), w.namespace, w.labels)}|${sourceFingerprint(scope, w)}`;
  const out = getOrCreate(c.outbound, outKey, () => buildOutbound(snap, scope, w, c.routes));
  let inb = c.inbound.get(inKey);
  if (!inb) {
    const warnings = new Warnings();
    const b = buildInbound(snap, w, warnings.warn);
    inb = finishPart({ ...b, warnings: warnings.items });
    c.inbound.set(inKey, inb);
  }
  const clusters = mergeSorted(out.clusters, inb.clusters);
  const eps: Record<string, Endpoint[]> = {};
  for (const cl of clusters) {
    const list = out.endpoints.get(cl.name) ?? inb.endpoints.get(cl.name);
    if (list) eps[cl.name] = list;
  }
  const warnings = new Warnings();
  for (const x of [...out.warnings, ...inb.warnings]) warnings.warn(x.resource, x.message, x.code);
  const inboundMtls = inboundMtlsFor(snap, w, warnings.warn);
  return {
    listeners: mergeSorted(out.listeners, inb.listeners),
    routeConfigs: [...out.routeConfigs, ...inb.routeConfigs],
    clusters,
    endpoints: {
      apiVersion: ENDPOINTS_API_VERSION,
      version: shortHash(`${out.endpointsHash}|${inb.endpointsHash}`),
      clusters: eps,
    },
    hash: `${out.hash}|${inb.hash}${inboundMtls ? `|${canonicalJson(inboundMtls)}` : ''}`,
    warnings: warnings.sorted(),
    inboundMtls,
    failoverPriority: clusters.some((cl) =>
      cl.localityLb?.failoverPriority?.some((e) => e.value === undefined),
    ),
  };
}

/** Mesh-wide access log (MeshConfig accessLogFile/Encoding/Format); undefined when off. */
function telemetryOf(mesh: MeshSettings): Telemetry | undefined {
  const l = mesh.accessLog;
  if (!l) return undefined;
  return {
    accessLog: {
      file: l.file,
      ...(l.encoding ? { encoding: l.encoding } : {}),
      ...(l.format ? { format: l.format } : {}),
    },
  };
}

/**
 * Compiles the proxy config of one workload. The returned documents may share sub-objects
 * with other workloads' results (and the endpoints document is shared by a whole class):
 * treat them as immutable.
 */
export function compileForWorkload(snap: MeshSnapshot, w: WorkloadIdentity): CompileResult {
  const c = caches(snap);
  const inKey = workloadKey(w);
  const a = getOrCreate(c.assembled, inKey, () => assemble(snap, c, w, inKey));
  const node = nodeOf(w);
  const sec = inboundSecurityFor(snap, w);
  const telemetry = telemetryOf(snap.mesh);
  const tables: ProxyTables = {
    apiVersion: TABLES_API_VERSION,
    version: shortHash(
      `${a.hash}|${canonicalJson(node)}${sec.hash}${telemetry ? `|${canonicalJson(telemetry)}` : ''}`,
    ),
    node,
    listeners: a.listeners,
    routeConfigs: a.routeConfigs,
    clusters: a.failoverPriority ? withFailoverPriority(a.clusters, node) : a.clusters,
  };
  if (a.inboundMtls) tables.inboundMtls = a.inboundMtls;
  if (sec.security) tables.security = sec.security;
  if (telemetry) tables.telemetry = telemetry;
  return { tables, endpoints: a.endpoints, warnings: withSecurityWarnings(a.warnings, sec.warnings) };
}
