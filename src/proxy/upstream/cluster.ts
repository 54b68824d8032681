/**
 * Runtime state of one upstream cluster: its hosts, balancer, circuit-breaker accounting
 * (Envoy semantics: maxConnections / http2MaxRequests bound concurrent upstream requests,
 * http1MaxPendingRequests bounds the queue behind them, overflow = 503 UO) and counters.
 * A ClusterState outlives config versions while the cluster's definition is unchanged, so
 * pools and counters persist across hot swaps.
 */
import type { Logger } from 'winston';
import type { Cluster, Endpoint, Locality } from '../../tables/index.js';
import { capturedOf } from '../sidecar/captured.js';
import type { MeshIdentity } from '../tls/identity.js';
import { UpstreamTls } from '../tls/upstream.js';
import { type Balancer, createBalancer, HostView } from './balancer.js';
import { createPool, EndpointState, endpointKey, type PoolSettings, poolKey } from './endpoint.js';
import { consistentHashError, type LbRequest, requestHash, socketOf } from './hash.js';
import { distributeGroups, OVERPROVISIONING, priorityLevels } from './locality.js';
import { OutlierDetector, OutlierStats } from './outlier.js';

export type { LbRequest } from './hash.js';

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
  readonly outlier = new OutlierStats();
}

/** Envoy ORIGINAL_DST cleanup interval: unused original-destination hosts go after this. */
const ORIGINAL_DST_CLEANUP_MS = 5000;
const NO_VIEWS: HostView[] = [];

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
  /** Hosts that take traffic: EDS-healthy and not ejected by outlier detection. */
  healthy: EndpointState[] = [];
  /**
   * What the balancer picks from, rebuilt on host-set changes: one view per priority level or
   * locality group, chosen with probability by `viewCum` (cumulative weights).
   */
  views: HostView[] = NO_VIEWS;
  viewCum: Float64Array = new Float64Array(0);
  /** Below minHealthPercent (Envoy panic): balancing over all hosts, health ignored. */
  panic = false;
  readonly outlier: OutlierDetector | null;
  /** The proxy's own locality (node.locality), for locality-aware balancing. */
  locality: Locality | undefined;
  readonly hashed: boolean;
  readonly passthrough: boolean;
  /** PASSTHROUGH: hosts created on demand for original destinations. */
  readonly originalDst = new Map<string, EndpointState>();
  private originalDstTimer: NodeJS.Timeout | null = null;
  active = 0;
  retriesActive = 0;
  /** Metrics label cache slot for requests that got no endpoint (owned by telemetry). */
  metricsSlot: unknown = undefined;
  private readonly pending: SlotWaiter[] = [];
  private pendingHead = 0;

  constructor(def: Cluster, defKey: string, stats?: ClusterStats, tls?: ClusterTlsDeps, locality?: Locality) {
    const hashError = consistentHashError(def.consistentHash);
    if (hashError !== null) throw new Error(`cluster ${def.name}: ${hashError}`);
    this.name = def.name;
    this.locality = locality;
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
    this.balancer = createBalancer(def.lbPolicy, def.consistentHash);
    this.hashed =
      (def.lbPolicy === 'RING_HASH' || def.lbPolicy === 'MAGLEV') && def.consistentHash !== undefined;
    this.passthrough = def.lbPolicy === 'PASSTHROUGH';
    this.stats = stats ?? new ClusterStats();
    this.outlier = def.outlierDetection
      ? new OutlierDetector(def.outlierDetection, this, this.stats.outlier)
      : null;
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

  /**
   * Chooses the host for one try. `req` gives the hash key (RING_HASH/MAGLEV) and the
   * captured original destination (PASSTHROUGH); without it (mirrors, TCP) hashing is random.
   */
  pick(req?: LbRequest | null): EndpointState | undefined {
    if (this.passthrough && req != null) {
      const dst = capturedOf(socketOf(req.res));
      if (dst !== undefined) return this.originalDstHost(dst.address, dst.port);
    }
    const views = this.views;
    const n = views.length;
    if (n === 0) return undefined;
    const hash = this.hashed && req != null ? requestHash(this.def.consistentHash!, req) : -1;
    if (n === 1) return this.balancer.pick(views[0]!, hash);
    // Priority / locality choice: by the hash when there is one (Envoy), else at random.
    const cum = this.viewCum;
    const x = (hash >= 0 ? (hash % 10007) / 10007 : Math.random()) * cum[n - 1]!;
    let i = 0;
    while (i < n - 1 && cum[i]! <= x) i++;
    return this.balancer.pick(views[i]!, hash);
  }

  /** An upstream response status of a host (outlier detection). */
  reportStatus(ep: EndpointState, status: number): void {
    if (this.outlier !== null) this.outlier.report(ep.outlier, status);
  }

  /** A locally originated failure: connect failure/reset count as 503, timeouts as 504 (Envoy). */
  reportFailure(ep: EndpointState, timedOut: boolean): void {
    if (this.outlier !== null) this.outlier.report(ep.outlier, timedOut ? 504 : 503);
  }

  /** OutlierHosts: an ejection or return changed which hosts take traffic. */
  hostsChanged(): void {
    this.rebuild();
  }

  setLocality(l: Locality | undefined): void {
    this.locality = l;
    this.rebuild();
  }

  /** Stops timers and closes the original-destination pools (the cluster was replaced or removed). */
  close(): void {
    this.outlier?.close();
    if (this.originalDstTimer !== null) clearInterval(this.originalDstTimer);
    this.originalDstTimer = null;
    for (const h of this.originalDst.values()) h.pool.close().catch(() => {});
    this.originalDst.clear();
  }

  private originalDstHost(address: string, port: number): EndpointState {
    const key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    let h = this.originalDst.get(key);
    if (h === undefined) {
      h = new EndpointState({ address, port }, createPool(address, port, this.poolSettings));
      this.originalDst.set(key, h);
      if (this.originalDstTimer === null) {
        this.originalDstTimer = setInterval(cleanupOriginalDst, ORIGINAL_DST_CLEANUP_MS, this);
        this.originalDstTimer.unref();
      }
    }
    return h;
  }

  /** Drops original-destination hosts unused since the last sweep. */
  cleanupOriginalDst(): void {
    for (const [key, h] of this.originalDst) {
      if (h.active === 0 && h.sweepMark === h.total) {
        this.originalDst.delete(key);
        h.pool.close().catch(() => {});
      } else h.sweepMark = h.total;
    }
  }

  /**
   * Recomputes the available hosts and the balancer views: outlier ejections, panic
   * (minHealthPercent), locality priorities with Envoy's priority load, distribute weights.
   */
  private rebuild(): void {
    const od = this.outlier;
    const hosts = this.hosts;
    od?.watch();
    const up = (h: EndpointState): boolean => h.healthy && (od === null || !h.outlier.ejected);
    this.healthy = hosts.filter(up);
    const minHealth = od?.minHealthPercent ?? 0;
    this.panic = minHealth > 0 && hosts.length > 0 && this.healthy.length * 100 < minHealth * hosts.length;
    if (this.panic) {
      this.setViews([new HostView(hosts.slice())], [1]);
      return;
    }
    const lb = this.def.localityLb;
    const groups = distributeGroups(hosts, this.locality, lb);
    if (groups !== null) {
      const views: HostView[] = [];
      const weights: number[] = [];
      for (const g of groups) {
        const avail = g.hosts.filter(up);
        if (avail.length === 0) continue;
        views.push(new HostView(avail));
        weights.push(g.weight * Math.min(1, (OVERPROVISIONING * avail.length) / g.hosts.length));
      }
      this.setViews(views, weights);
      return;
    }
    const levels = priorityLevels(hosts, this.locality, lb);
    if (levels.length === 1) {
      this.setViews([new HostView(this.healthy)], [1]);
      return;
    }
    // Envoy priority load: each level takes min(100, 140 x healthy share) of what is left.
    const views: HostView[] = [];
    const health: number[] = [];
    let sum = 0;
    for (const level of levels) {
      const avail = level.filter(up);
      const h = Math.min(100, (100 * OVERPROVISIONING * avail.length) / level.length);
      if (avail.length === 0) continue;
      views.push(new HostView(avail));
      health.push(h);
      sum += h;
    }
    const scale = sum < 100 && sum > 0 ? 100 / sum : 1;
    let left = 100;
    const loads = health.map((h) => {
      const load = Math.min(left, h * scale);
      left -= load;
      return load;
    });
    this.setViews(views, loads);
  }

  private setViews(views: HostView[], weights: number[]): void {
    const keep: HostView[] = [];
    const cum: number[] = [];
    let total = 0;
    for (let i = 0; i < views.length; i++) {
      if (views[i]!.hosts.length === 0 || !(weights[i]! > 0)) continue;
      total += weights[i]!;
      keep.push(views[i]!);
      cum.push(total);
    }
    this.views = keep;
    this.viewCum = Float64Array.from(cum);
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
      if (old) state.outlier = old.outlier;
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
    this.rebuild();
    return next;
  }
}

function cleanupOriginalDst(c: ClusterState): void {
  c.cleanupOriginalDst();
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return JSON.stringify(a.workload) === JSON.stringify(b.workload);
}
