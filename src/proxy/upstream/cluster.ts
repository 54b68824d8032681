/**
 * Runtime state of one upstream cluster: its hosts, balancer, circuit-breaker accounting
 * (Envoy semantics: maxConnections / http2MaxRequests bound concurrent upstream requests,
 * http1MaxPendingRequests bounds the queue behind them, overflow = 503 UO) and counters.
 * A ClusterState outlives config versions while the cluster's definition is unchanged, so
 * pools and counters persist across hot swaps.
 */
import type { Logger } from 'winston';
import type { Cluster, Endpoint } from '../../tables/index.js';
import type { MeshIdentity } from '../tls/identity.js';
import { UpstreamTls } from '../tls/upstream.js';
import { type Balancer, createBalancer } from './balancer.js';
import { createPool, EndpointState, endpointKey, type PoolSettings, poolKey } from './endpoint.js';

/** What clusters need to originate TLS (the proxy's workload identity, a logger). */
export interface ClusterTlsDeps {
  identity: MeshIdentity | null;
  log: Logger;
}

/** Something waiting for a circuit-breaker slot. */
export interface SlotWaiter {
  /** Set by the waiter when it gave up (timeout, client gone); the queue skips it. */
  waitCancelled: boolean;
  onSlot(): void;
}

const UNLIMITED = 0xffffffff;

export class ClusterStats {
  rqTotal = 0;
  rqActive = 0;
  rqPendingActive = 0;
  rqPendingOverflow = 0;
  rqRetry = 0;
  rqRetryOverflow = 0;
  rqTimeout = 0;
  rqNoHealthy = 0;
  cxConnectFail = 0;
  rqReset = 0;
}

export class ClusterState {
  readonly name: string;
  readonly def: Cluster;
  readonly defKey: string;
  readonly poolSettings: PoolSettings;
  readonly poolSettingsKey: string;
  readonly maxActive: number;
  readonly maxPending: number;
  readonly maxRetries: number;
  readonly balancer: Balancer;
  readonly stats: ClusterStats;
  /** Client-side TLS of the cluster (null = plaintext); per endpoint for auto mTLS. */
  readonly tls: UpstreamTls | null;
  hosts: EndpointState[] = [];
  healthy: EndpointState[] = [];
  active = 0;
  retriesActive = 0;
  /** Metrics label cache slot for requests that got no endpoint (owned by telemetry). */
  metricsSlot: unknown = undefined;
  private readonly pending: SlotWaiter[] = [];
  private pendingHead = 0;

  constructor(def: Cluster, defKey: string, stats?: ClusterStats, tls?: ClusterTlsDeps) {
    this.name = def.name;
    this.def = def;
    this.defKey = defKey;
    const cp = def.connectionPool ?? {};
    // HTTP/1.1: one request per connection, so maxConnections bounds requests too; HTTP/2
    // multiplexes, and only http2MaxRequests bounds concurrent requests (Envoy max_requests).
    const h2 = def.upstreamProtocol === 'http2';
    this.maxActive = h2
      ? (cp.http2MaxRequests ?? UNLIMITED)
      : Math.min(cp.maxConnections ?? UNLIMITED, cp.http2MaxRequests ?? UNLIMITED);
    this.maxPending = cp.http1MaxPendingRequests ?? UNLIMITED;
    this.maxRetries = cp.maxRetries ?? UNLIMITED;
    this.poolSettings = {
      connections: cp.maxConnections,
      connectTimeoutMs: def.connectTimeoutMs ?? 10_000,
      idleTimeoutMs: cp.idleTimeoutMs ?? 60_000,
      maxRequestsPerConnection: cp.maxRequestsPerConnection ?? 0,
      protocol: def.upstreamProtocol ?? 'http1',
      maxConcurrentStreams: cp.maxConcurrentStreams ?? 0,
    };
    this.poolSettingsKey = poolKey(this.poolSettings);
    this.balancer = createBalancer(def.lbPolicy);
    this.stats = stats ?? new ClusterStats();
    this.tls =
      def.tls && def.tls.mode !== 'DISABLE' && tls
        ? new UpstreamTls(def.name, def.tls, tls.identity, tls.log)
        : null;
  }

  /** The TLS of one endpoint: the cluster's, unless auto mTLS leaves this endpoint plaintext. */
  transportFor(ep: Endpoint): UpstreamTls | null {
    const t = this.tls;
    return t?.appliesTo(ep.labels) ? t : null;
  }

  pick(): EndpointState | undefined {
    return this.balancer.pick(this.healthy);
  }

  /**
   * Asks for a slot to send one request. Returns 'go' (slot taken), 'queued' (waiter.onSlot
   * runs later) or 'overflow' (503 UO).
   */
  acquire(waiter: SlotWaiter): 'go' | 'queued' | 'overflow' {
    if (this.active < this.maxActive) {
      this.active++;
      this.stats.rqActive = this.active;
      return 'go';
    }
    if (this.pending.length - this.pendingHead >= this.maxPending) {
      this.stats.rqPendingOverflow++;
      return 'overflow';
    }
    this.pending.push(waiter);
    this.stats.rqPendingActive = this.pending.length - this.pendingHead;
    return 'queued';
  }

  /** Returns a slot and hands it to the oldest live waiter, if any. */
  release(): void {
    this.active--;
    while (this.pendingHead < this.pending.length && this.active < this.maxActive) {
      const w = this.pending[this.pendingHead]!;
      this.pending[this.pendingHead++] = undefined as unknown as SlotWaiter;
      if (w.waitCancelled) continue;
      this.active++;
      w.onSlot();
    }
    if (this.pendingHead === this.pending.length) {
      this.pending.length = 0;
      this.pendingHead = 0;
    }
    this.stats.rqActive = this.active;
    this.stats.rqPendingActive = this.pending.length - this.pendingHead;
  }

  /** Replaces the host set; pools of hosts that stay (same address:port) are reused. */
  setEndpoints(endpoints: readonly Endpoint[], reusable: Map<string, EndpointState>): EndpointState[] {
    const next: EndpointState[] = [];
    for (const ep of endpoints) {
      const key = endpointKey(ep);
      const transport = this.transportFor(ep);
      let old = reusable.get(key);
      // A host whose TLS changed (e.g. it got a sidecar) needs a new pool.
      if (old && old.transport?.key !== transport?.key) old = undefined;
      const settings = transport ? { ...this.poolSettings, transport } : this.poolSettings;
      const pool = old ? old.pool : createPool(ep.address, ep.port, settings);
      if (old) reusable.delete(key);
      const state = new EndpointState(ep, pool, transport);
      if (old && sameEndpoint(old.spec, ep)) {
        state.active = old.active;
        state.total = old.total;
        state.errors = old.errors;
        state.metricsSlot = old.metricsSlot;
      } else if (old) {
        state.active = old.active;
      }
      next.push(state);
    }
    this.hosts = next;
    this.healthy = next.filter((h) => h.healthy);
    return next;
  }
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return JSON.stringify(a.workload) === JSON.stringify(b.workload);
}
