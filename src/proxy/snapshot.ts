/**
 * One compiled config version: everything the request path reads, built once from
 * validated tables. Swapping `Proxy.snapshot` to a new Snapshot is the atomic config
 * switch; requests keep the Snapshot (and routes) they started with.
 */
import type { Listener, ProxyTables } from '../tables/index.js';
import { compileRouteConfig } from './router/compile.js';
import type { CompiledRouteConfig } from './router/compiled.js';
import type { ClusterState } from './upstream/cluster.js';

export class Snapshot {
  readonly version: string;
  readonly tables: ProxyTables;
  readonly listeners: ReadonlyMap<string, Listener>;
  readonly routeConfigs: ReadonlyMap<string, CompiledRouteConfig>;
  readonly routeConfigByPort: ReadonlyMap<number, CompiledRouteConfig>;
  readonly clusters: ReadonlyMap<string, ClusterState>;

  constructor(tables: ProxyTables, clusters: ReadonlyMap<string, ClusterState>) {
    this.version = tables.version;
    this.tables = tables;
    this.clusters = clusters;
    this.listeners = new Map(tables.listeners.map((l) => [l.name, l]));
    const lookup = (name: string): ClusterState => {
      const c = clusters.get(name);
      if (!c) throw new Error(`unknown cluster "${name}"`); // validation guarantees presence
      return c;
    };
    const byName = new Map<string, CompiledRouteConfig>();
    const byPort = new Map<number, CompiledRouteConfig>();
    for (const rc of tables.routeConfigs) {
      const compiled = compileRouteConfig(rc, lookup);
      byName.set(rc.name, compiled);
      if (rc.port !== undefined) byPort.set(rc.port, compiled);
    }
    this.routeConfigs = byName;
    this.routeConfigByPort = byPort;
  }

  /** The state before any config: no listeners, no routes. */
  static empty(): Snapshot {
    return new Snapshot(
      { apiVersion: 'isthmus.io/tables/v1', version: '', listeners: [], routeConfigs: [], clusters: [] },
      new Map(),
    );
  }
}
