/**
 * One upstream host of a cluster and its keep-alive connection pool (undici Pool, chosen
 * over node:http Agent after measuring: see bench/proxy/upstream-client.ts).
 */
import { Pool } from 'undici';
import type { Endpoint, Workload } from '../../tables/index.js';

export interface PoolSettings {
  /** Max connections to this host; undefined = unbounded. */
  connections: number | undefined;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRequestsPerConnection: number;
}

export function poolKey(s: PoolSettings): string {
  return `${s.connections ?? 'inf'}/${s.connectTimeoutMs}/${s.idleTimeoutMs}/${s.maxRequestsPerConnection}`;
}

export function createPool(address: string, port: number, s: PoolSettings): Pool {
  const host = address.includes(':') ? `[${address}]` : address;
  return new Pool(`http://${host}:${port}`, {
    connections: s.connections ?? null,
    pipelining: 1,
    connect: { timeout: s.connectTimeoutMs },
    keepAliveTimeout: s.idleTimeoutMs,
    keepAliveMaxTimeout: Math.max(s.idleTimeoutMs, 1000),
    ...(s.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: s.maxRequestsPerConnection } : {}),
  });
}

export class EndpointState {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly healthy: boolean;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly workload: Workload | undefined;
  readonly spec: Endpoint;
  readonly pool: Pool;
  /** Requests currently dispatched to this host (for LEAST_REQUEST and /clusters). */
  active = 0;
  total = 0;
  errors = 0;
  /** Metrics label cache slot, owned by telemetry (per endpoint, so per request is free). */
  metricsSlot: unknown = undefined;

  constructor(spec: Endpoint, pool: Pool) {
    this.spec = spec;
    this.key = endpointKey(spec);
    this.address = spec.address;
    this.port = spec.port;
    this.healthy = spec.health === undefined || spec.health === 'HEALTHY' || spec.health === 'UNKNOWN';
    this.weight = spec.weight ?? 1;
    this.labels = spec.labels ?? {};
    this.workload = spec.workload;
    this.pool = pool;
  }
}

export function endpointKey(ep: Endpoint): string {
  return `${ep.address}:${ep.port}`;
}
