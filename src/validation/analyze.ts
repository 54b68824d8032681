/**
 * `isthmus analyze`: validates a set of documents and adds cross-resource warnings that no
 * single-object check (and so no webhook) can give. Pure: documents in, report out.
 */
import { CLUSTER_DOMAIN } from '../api/mesh.js';
import type { Finding } from './findings.js';
import { isObject, list } from './kinds/common.js';
import type { MessageName } from './messages.js';
import { type ResourceRef, type ResourceVerdict, validateResource } from './resource.js';

export interface SourceDocument {
  /** Where it came from, e.g. `samples/reviews.yaml#2`. */
  source: string;
  object: unknown;
}

export interface AnalyzedDocument extends ResourceVerdict {
  source: string;
}

/** `reviews` in `shop` -> `reviews.shop.svc.cluster.local`; FQDNs and wildcards unchanged. */
export function resolveHost(host: string, namespace: string): string {
  if (host.includes('.') || host.includes('*')) return host;
  return `${host}.${namespace}.${CLUSTER_DOMAIN}`;
}

/** `name` or `ns/name` in `namespace` -> `ns/name`. */
function resolveGateway(ref: string, namespace: string): string {
  return ref.includes('/') ? ref : `${namespace}/${ref}`;
}

interface Indexed extends AnalyzedDocument {
  object: unknown;
}

const spec = (d: Indexed) => {
  const o = d.object;
  return isObject(o) && isObject(o.spec) ? o.spec : {};
};

function warn(d: Indexed, path: string, message: string, code: MessageName): void {
  d.findings.push({ path, severity: 'warning', message, code } satisfies Finding);
}

function checkSubsets(docs: Indexed[]): void {
  const subsetsByHost = new Map<string, Set<string>>();
  for (const d of docs.filter((x) => x.ref.kind === 'DestinationRule')) {
    const s = spec(d);
    if (typeof s.host !== 'string') continue;
    const host = resolveHost(s.host, d.ref.namespace);
    const set = subsetsByHost.get(host) ?? new Set<string>();
    for (const sub of list(s.subsets)) if (isObject(sub) && typeof sub.name === 'string') set.add(sub.name);
    subsetsByHost.set(host, set);
  }
  for (const d of docs.filter((x) => x.ref.kind === 'VirtualService')) {
    const s = spec(d);
    const visit = (dest: unknown, path: string) => {
      if (!isObject(dest) || typeof dest.subset !== 'string' || typeof dest.host !== 'string') return;
      const host = resolveHost(dest.host, d.ref.namespace);
      if (!subsetsByHost.get(host)?.has(dest.subset))
        warn(
          d,
          `${path}.subset`,
          `subset ${JSON.stringify(dest.subset)} of host ${JSON.stringify(dest.host)} is not defined by any DestinationRule`,
          'ReferencedResourceNotFound',
        );
    };
    for (const section of ['http', 'tls', 'tcp'] as const) {
      list(s[section]).forEach((r, i) => {
        if (!isObject(r)) return;
        list(r.route).forEach(
          (rd, j) => isObject(rd) && visit(rd.destination, `spec.${section}[${i}].route[${j}].destination`),
        );
        if (section === 'http') {
          visit(r.mirror, `spec.http[${i}].mirror`);
          list(r.mirrors).forEach(
            (m, j) => isObject(m) && visit(m.destination, `spec.http[${i}].mirrors[${j}].destination`),
          );
        }
      });
    }
  }
}

function gatewaysOf(d: Indexed): string[] {
  const gws = list(spec(d).gateways).filter((g): g is string => typeof g === 'string');
  return gws.length ? gws : ['mesh'];
}

function checkGateways(docs: Indexed[]): void {
  const known = new Set(
    docs.filter((x) => x.ref.kind === 'Gateway').map((g) => `${g.ref.namespace}/${g.ref.name}`),
  );
  for (const d of docs.filter((x) => x.ref.kind === 'VirtualService')) {
    list(spec(d).gateways).forEach((g, i) => {
      if (typeof g !== 'string' || g === 'mesh') return;
      const ref = resolveGateway(g, d.ref.namespace);
      if (!known.has(ref))
        warn(
          d,
          `spec.gateways[${i}]`,
          `gateway ${JSON.stringify(ref)} is not defined by any Gateway`,
          'ReferencedResourceNotFound',
        );
    });
  }
}

function checkConflictingHosts(docs: Indexed[]): void {
  const owners = new Map<string, Indexed[]>();
  for (const d of docs.filter((x) => x.ref.kind === 'VirtualService')) {
    for (const gw of gatewaysOf(d)) {
      const gateway = gw === 'mesh' ? 'mesh' : resolveGateway(gw, d.ref.namespace);
      for (const h of list(spec(d).hosts)) {
        if (typeof h !== 'string') continue;
        const key = `${gateway}\u0000${resolveHost(h, d.ref.namespace)}`;
        owners.set(key, [...(owners.get(key) ?? []), d]);
      }
    }
  }
  for (const [key, ds] of owners) {
    if (ds.length < 2) continue;
    const [gateway, host] = key.split('\u0000');
    for (const d of ds) {
      const others = ds.filter((o) => o !== d).map((o) => `${o.ref.namespace}/${o.ref.name}`);
      warn(
        d,
        'spec.hosts',
        `host ${JSON.stringify(host)} on gateway ${JSON.stringify(gateway)} is also claimed by VirtualService ${others.join(', ')}; only one of them will be used`,
        'ConflictingMeshGatewayVirtualServiceHosts',
      );
    }
  }
}

export interface AnalyzeOptions {
  defaultNamespace?: string;
  rootNamespace?: string;
}

export function analyze(docs: SourceDocument[], opts: AnalyzeOptions = {}): AnalyzedDocument[] {
  const out: Indexed[] = docs.map((d) => ({
    ...validateResource(d.object, opts),
    source: d.source,
    object: d.object,
  }));
  const mesh = out.filter((d) => d.meshKind);
  checkSubsets(mesh);
  checkGateways(mesh);
  checkConflictingHosts(mesh);
  return out.map(({ object: _o, ...rest }) => rest);
}

export type { ResourceRef };
