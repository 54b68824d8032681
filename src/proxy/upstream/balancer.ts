/**
 * Load balancers over a cluster's healthy hosts. Stateless apart from the round-robin
 * cursor, so a host-set change only swaps the array they read.
 * TODO(issue 4): weights, locality preference/failover, consistent hash, PASSTHROUGH.
 */
import type { EndpointState } from './endpoint.js';

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH';

export interface Balancer {
  pick(hosts: readonly EndpointState[]): EndpointState | undefined;
}

class RoundRobin implements Balancer {
  private next = 0;
  pick(hosts: readonly EndpointState[]): EndpointState | undefined {
    const n = hosts.length;
    if (n === 0) return undefined;
    if (this.next >= n) this.next = 0;
    return hosts[this.next++];
  }
}

class RandomPick implements Balancer {
  pick(hosts: readonly EndpointState[]): EndpointState | undefined {
    const n = hosts.length;
    return n === 0 ? undefined : hosts[(Math.random() * n) | 0];
  }
}

/** Envoy's LEAST_REQUEST default: power of two choices by active requests. */
class LeastRequest implements Balancer {
  pick(hosts: readonly EndpointState[]): EndpointState | undefined {
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    const a = hosts[(Math.random() * n) | 0]!;
    let b = hosts[(Math.random() * n) | 0]!;
    if (b === a) b = hosts[(hosts.indexOf(a) + 1) % n]!;
    return b.active < a.active ? b : a;
  }
}

export function createBalancer(policy: LbPolicy | undefined): Balancer {
  switch (policy) {
    case 'LEAST_REQUEST':
      return new LeastRequest();
    case 'RANDOM':
      return new RandomPick();
    default:
      return new RoundRobin();
  }
}
