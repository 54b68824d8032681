/**
 * DestinationRule selection as Istio's PushContext does it:
 *  1. rules in the proxy's namespace (any exportTo that includes it), most specific host;
 *     with several for that host, one whose workloadSelector matches the proxy wins, else the
 *     selector-less one;
 *  2. else rules exported from the service's namespace to the proxy's namespace;
 *  3. else rules exported from the root namespace.
 * Rules for the same host in the same index are merged: subsets are unioned (first one wins a
 * duplicate name), the first top-level trafficPolicy wins (oldest rule first).
 */

import type { DestinationRuleSpec, TrafficPolicy } from '../api/networking/destination-rule.js';
import { getOrCreate } from '../registry/hash.js';
import { HostIndex as HostLookup, resolveShortName } from '../registry/host.js';
import { selects } from '../registry/kube-objects.js';
import type { DestinationRuleConfig, MeshService, MeshSnapshot } from '../registry/types.js';
import { isExportedTo } from '../registry/visibility.js';

export type Subset = NonNullable<DestinationRuleSpec['subsets']>[number];

/** One or more DestinationRules for one host, merged. */
export interface MergedRule {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  selector?: Record<string, string>;
  exportTo: string[];
  /** `ns/name` of every rule merged in (for status and dependency tracking). */
  sources: string[];
}

type HostIndex = Map<string, MergedRule[]>;

export interface DestinationRuleIndex {
  namespaceLocal: Map<string, HostIndex>;
  exportedByNamespace: Map<string, HostIndex>;
  rootLocal: HostIndex;
  root: string;
}

function merge(index: HostIndex, dr: DestinationRuleConfig, host: string, exportTo: string[]): void {
  const list = index.get(host) ?? [];
  index.set(host, list);
  const selector = dr.spec.workloadSelector?.matchLabels;
  const src = `${dr.namespace}/${dr.name}`;
  // Rules with a workload selector are kept apart: they apply to their workloads only.
  const into = selector ? undefined : list.find((m) => !m.selector);
  if (!into) {
    list.push({
      host,
      ...(dr.spec.trafficPolicy ? { trafficPolicy: dr.spec.trafficPolicy } : {}),
      subsets: [...(dr.spec.subsets ?? [])],
      ...(selector ? { selector } : {}),
      exportTo,
      sources: [src],
    });
    if (selector) list.sort((a, b) => (a.selector ? 0 : 1) - (b.selector ? 0 : 1));
    return;
  }
  const names = new Set(into.subsets.map((s) => s.name));
  for (const s of dr.spec.subsets ?? []) if (!names.has(s.name)) into.subsets.push(s);
  if (!into.trafficPolicy && dr.spec.trafficPolicy) into.trafficPolicy = dr.spec.trafficPolicy;
  into.sources.push(src);
}

const CACHE = new WeakMap<MeshSnapshot, DestinationRuleIndex>();

export function destinationRuleIndex(snap: MeshSnapshot): DestinationRuleIndex {
  const cached = CACHE.get(snap);
  if (cached) return cached;
  const root = snap.mesh.rootNamespace;
  const idx: DestinationRuleIndex = {
    namespaceLocal: new Map(),
    exportedByNamespace: new Map(),
    rootLocal: new Map(),
    root,
  };
  const get = (m: Map<string, HostIndex>, ns: string) => {
    return getOrCreate(m, ns, () => new Map() as HostIndex);
  };
  for (const dr of snap.destinationRules) {
    if (!dr.spec.host) continue;
    const host = resolveShortName(dr.spec.host, dr.namespace);
    // A rule with a workload selector is never exported (Istio).
    const exportTo = dr.spec.workloadSelector ? ['.'] : [...(dr.spec.exportTo ?? [])];
    if (isExportedTo(exportTo, dr.namespace, dr.namespace))
      merge(get(idx.namespaceLocal, dr.namespace), dr, host, exportTo);
    const privateOnly = exportTo.length === 1 && (exportTo[0] === '.' || exportTo[0] === dr.namespace);
    if (!privateOnly) merge(get(idx.exportedByNamespace, dr.namespace), dr, host, exportTo);
    else if (dr.namespace === root) merge(idx.rootLocal, dr, host, exportTo);
  }
  CACHE.set(snap, idx);
  return idx;
}

function pick(list: MergedRule[] | undefined, labels: Record<string, string>): MergedRule | undefined {
  if (!list) return undefined;
  return list.find((m) => m.selector && selects(m.selector, labels)) ?? list.find((m) => !m.selector);
}

const LOOKUP = new WeakMap<HostIndex, HostLookup<MergedRule[]>>();

function lookup(index: HostIndex | undefined, hostname: string): MergedRule[] | undefined {
  if (!index) return undefined;
  return getOrCreate(LOOKUP, index, () => new HostLookup(index.entries())).lookup(hostname);
}

export function destinationRuleFor(
  idx: DestinationRuleIndex,
  proxyNamespace: string,
  labels: Record<string, string>,
  svc: MeshService,
): MergedRule | undefined {
  const local =
    proxyNamespace !== idx.root
      ? lookup(idx.namespaceLocal.get(proxyNamespace), svc.hostname)
      : lookup(idx.rootLocal, svc.hostname);
  const chosen = pick(local, labels);
  if (chosen) return chosen;
  for (const owner of [svc.namespace, idx.root]) {
    const list = lookup(idx.exportedByNamespace.get(owner), svc.hostname)?.filter((m) =>
      isExportedTo(m.exportTo, owner, proxyNamespace),
    );
    const found = list?.find((m) => !m.selector);
    if (found) return found;
  }
  return undefined;
}

/** Keys of workload-selector rules in the namespace matching these labels: part of the cache key. */
export function selectorRulesFingerprint(
  idx: DestinationRuleIndex,
  ns: string,
  labels: Record<string, string>,
): string {
  const local = idx.namespaceLocal.get(ns);
  if (!local) return '';
  const out: string[] = [];
  for (const list of local.values())
    for (const m of list) if (m.selector && selects(m.selector, labels)) out.push(m.sources.join('+'));
  return out.sort().join(',');
}
