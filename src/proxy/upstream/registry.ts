/**
 * All clusters of the proxy across config versions. Applying tables reuses a ClusterState
 * whose definition is unchanged; applying endpoints swaps host sets in place. Pools of hosts
 * that disappear are closed gracefully (in-flight requests finish first).
 */
import type { Cluster, Endpoint, Locality } from '../../tables/index.js';
import { ClusterState, type ClusterTlsDeps } from './cluster.js';
import type { EndpointState } from './endpoint.js';

export class ClusterRegistry {
  private clusters = new Map<string, ClusterState>();
  private endpoints = new Map<string, readonly Endpoint[]>();
  /** Set by the proxy: clusters with `tls` originate it with these (absent: no TLS at all). */
  tls: ClusterTlsDeps | undefined = undefined;
  /** The proxy's own locality (node.locality) for locality-aware balancing. */
  private locality: Locality | undefined = undefined;
  private localityKey = '';

  /** Sets the proxy's locality; installed clusters rebalance when it changed. */
  setLocality(l: Locality | undefined): void {
    const key = l ? `${l.region ?? ''}/${l.zone ?? ''}/${l.subzone ?? ''}` : '';
    if (key === this.localityKey) return;
    this.localityKey = key;
    this.locality = l;
    for (const c of this.clusters.values()) c.setLocality(l);
  }

  get(name: string): ClusterState | undefined {
    return this.clusters.get(name);
  }

  all(): IterableIterator<ClusterState> {
    return this.clusters.values();
  }

  /** Builds the cluster map for a new config; returns it without installing (see commit). */
  prepare(defs: readonly Cluster[]): Map<string, ClusterState> {
    const next = new Map<string, ClusterState>();
    for (const def of defs) {
      const defKey = JSON.stringify(def);
      const old = this.clusters.get(def.name);
      if (old && old.defKey === defKey) {
        next.set(def.name, old);
        continue;
      }
      const state = new ClusterState(def, defKey, old?.stats, this.tls, this.locality);
      next.set(def.name, state);
    }
    return next;
  }

  /**
   * Installs a prepared map: (re)assigns host sets and closes pools nobody uses any more.
   * Inline endpoints (static configs) replace the endpoint set; otherwise the last applied
   * endpoint table stays.
   */
  commit(next: Map<string, ClusterState>, inlineEndpoints?: Record<string, Endpoint[]>): void {
    if (inlineEndpoints) this.endpoints = new Map(Object.entries(inlineEndpoints));
    const prev = this.clusters;
    this.clusters = next;
    const orphans: EndpointState[] = [];
    for (const [name, state] of next) {
      const old = prev.get(name);
      if (old === state && !this.endpointsChanged(state)) continue;
      const reusable = new Map<string, EndpointState>();
      // Pools move to the new state only when their settings are identical.
      if (old) {
        for (const h of old.hosts) {
          if (old.poolSettingsKey === state.poolSettingsKey) reusable.set(h.key, h);
          else orphans.push(h);
        }
      }
      state.setEndpoints(this.endpoints.get(name) ?? [], reusable);
      orphans.push(...reusable.values());
    }
    for (const [name, old] of prev) {
      if (next.get(name) !== old) old.close();
      if (!next.has(name)) orphans.push(...old.hosts);
    }
    closePools(orphans);
  }

  /** Applies a new endpoint set to the installed clusters. */
  applyEndpoints(byCluster: Record<string, Endpoint[]>): void {
    this.endpoints = new Map(Object.entries(byCluster));
    const orphans: EndpointState[] = [];
    for (const [name, state] of this.clusters) {
      const reusable = new Map(state.hosts.map((h) => [h.key, h] as const));
      state.setEndpoints(this.endpoints.get(name) ?? [], reusable);
      orphans.push(...reusable.values());
    }
    closePools(orphans);
  }

  endpointsOf(name: string): readonly Endpoint[] {
    return this.endpoints.get(name) ?? [];
  }

  async close(): Promise<void> {
    const all: Promise<void>[] = [];
    for (const c of this.clusters.values()) {
      for (const h of c.hosts) all.push(h.pool.destroy().catch(() => {}));
      for (const h of c.originalDst.values()) all.push(h.pool.destroy().catch(() => {}));
      c.originalDst.clear();
      c.close();
    }
    this.clusters = new Map();
    await Promise.all(all);
  }

  private endpointsChanged(state: ClusterState): boolean {
    const eps = this.endpoints.get(state.name) ?? [];
    if (eps.length !== state.hosts.length) return true;
    for (let i = 0; i < eps.length; i++) if (eps[i] !== state.hosts[i]!.spec) return true;
    return false;
  }
}

function closePools(hosts: readonly EndpointState[]): void {
  const seen = new Set<unknown>();
  for (const h of hosts) {
    if (seen.has(h.pool)) continue;
    seen.add(h.pool);
    h.pool.close().catch(() => {});
  }
}
