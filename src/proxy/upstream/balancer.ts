/**
 * Load balancers over one HostView: the available hosts of one priority level / locality
 * group, with their weight prefix sums, built once per host-set change (endpoints applied,
 * a host ejected or returned). Per pick only index arithmetic: no allocation.
 * - ROUND_ROBIN: plain rotation; with unequal weights smooth weighted round robin (nginx),
 *   so a 1:3 pair gets exactly 1 of every 4 requests.
 * - RANDOM: weighted random (binary search over the prefix sums).
 * - LEAST_REQUEST (Istio's default): power of two choices by active requests (per weight).
 * - RING_HASH / MAGLEV: the request's hash into a table built lazily per view (hash.ts);
 *   a request without a hash key gets a weighted random host (Envoy).
 * PASSTHROUGH is the cluster's (original destination, cluster.ts).
 */
import type { ConsistentHash } from '../../tables/index.js';
import type { EndpointState } from './endpoint.js';
import { DEFAULT_MAGLEV_SIZE, DEFAULT_RING_SIZE, type HashTable, Maglev, Ring } from './hash.js';

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'RING_HASH' | 'MAGLEV';

export class HostView {
  readonly hosts: EndpointState[];
  readonly weighted: boolean;
  /** Prefix sums of the weights (cum[i] = sum of weights 0..i). */
  readonly cum: Float64Array;
  readonly totalWeight: number;
  /** Round-robin cursor; smooth WRR current weights. */
  cursor = 0;
  readonly current: Float64Array;
  /** Consistent-hash table, built on first use. */
  table: HashTable | null = null;

  constructor(hosts: EndpointState[]) {
    this.hosts = hosts;
    const n = hosts.length;
    this.cum = new Float64Array(n);
    this.current = new Float64Array(n);
    let sum = 0;
    let weighted = false;
    for (let i = 0; i < n; i++) {
      const w = hosts[i]!.weight;
      if (w !== hosts[0]!.weight) weighted = true;
      sum += w;
      this.cum[i] = sum;
    }
    this.totalWeight = sum;
    this.weighted = weighted;
  }

  /** A host drawn with probability proportional to its weight; `r` in [0, 1). */
  weightedAt(r: number): EndpointState {
    const n = this.hosts.length;
    if (!this.weighted) return this.hosts[(r * n) | 0]!;
    const x = r * this.totalWeight;
    const cum = this.cum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return this.hosts[lo]!;
  }
}

export interface Balancer {
  /** `hash` is the request's consistent hash (-1 = none; only hash balancers read it). */
  pick(view: HostView, hash: number): EndpointState | undefined;
}

class RoundRobin implements Balancer {
  pick(view: HostView): EndpointState | undefined {
    const hosts = view.hosts;
    const n = hosts.length;
    if (n === 0) return undefined;
    if (!view.weighted) {
      if (view.cursor >= n) view.cursor = 0;
      return hosts[view.cursor++];
    }
    const cur = view.current;
    let best = 0;
    for (let i = 0; i < n; i++) {
      cur[i] = cur[i]! + hosts[i]!.weight;
      if (cur[i]! > cur[best]!) best = i;
    }
    cur[best] = cur[best]! - view.totalWeight;
    return hosts[best];
  }
}

class RandomPick implements Balancer {
  pick(view: HostView): EndpointState | undefined {
    return view.hosts.length === 0 ? undefined : view.weightedAt(Math.random());
  }
}

/** Envoy's LEAST_REQUEST default: power of two choices by active requests (weighted draw). */
class LeastRequest implements Balancer {
  pick(view: HostView): EndpointState | undefined {
    const hosts = view.hosts;
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    const a = view.weightedAt(Math.random());
    let b = view.weightedAt(Math.random());
    if (b === a) b = hosts[(hosts.indexOf(a) + 1) % n]!;
    return b.active * a.weight < a.active * b.weight ? b : a;
  }
}

class HashPick implements Balancer {
  constructor(
    private readonly maglev: boolean,
    private readonly size: number,
  ) {}

  pick(view: HostView, hash: number): EndpointState | undefined {
    if (view.hosts.length === 0) return undefined;
    if (hash < 0) return view.weightedAt(Math.random());
    if (view.table === null)
      view.table = this.maglev ? new Maglev(view.hosts, this.size) : new Ring(view.hosts, this.size);
    return view.table.lookup(hash);
  }
}

export function createBalancer(policy: LbPolicy | undefined, ch?: ConsistentHash): Balancer {
  switch (policy) {
    case 'LEAST_REQUEST':
      return new LeastRequest();
    case 'RANDOM':
      return new RandomPick();
    case 'RING_HASH':
      return new HashPick(false, ch?.minimumRingSize ?? DEFAULT_RING_SIZE);
    case 'MAGLEV':
      return new HashPick(true, ch?.tableSize ?? DEFAULT_MAGLEV_SIZE);
    default:
      return new RoundRobin();
  }
}
