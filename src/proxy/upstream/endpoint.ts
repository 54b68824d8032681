/**
 * One upstream host of a cluster and its keep-alive connection pool: HTTP/1.1 through an
 * undici Pool (chosen over node:http Agent after measuring: see
 * bench/proxy/upstream-client.ts), h2c through http2/client-pool.ts, or both for `auto`
 * clusters (the downstream request's protocol picks).
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Pool as UndiciPool } from 'undici';
import type { Endpoint, Workload } from '../../tables/index.js';
import { AutoPool, H2Pool } from '../http2/client-pool.js';
import type { UpstreamTls } from '../tls/upstream.js';
import { HostOutlier } from './outlier.js';

// undici's index also loads fetch, WebSocket and its cache (~9 MB of RSS in every sidecar); the
// Pool class alone is all the data path uses. undici 7 has no `exports` map, so the file is reachable.
const Pool: typeof UndiciPool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js');

export interface PoolSettings {
  /** Max connections to this host; undefined = unbounded. */
  connections: number | undefined;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRequestsPerConnection: number;
  /** Upstream protocol (cluster upstreamProtocol); default http1. */
  protocol?: 'http1' | 'http2' | 'auto';
  /** HTTP/2: streams per connection (0 = the peer's SETTINGS limit). */
  maxConcurrentStreams?: number;
  /** TLS to this host (per endpoint: see ClusterState.setEndpoints); absent = plaintext. */
  transport?: UpstreamTls;
}

/** One upstream request as the exchange hands it to a pool (undici's dispatch shape). */
export interface UpstreamRequest {
  path: string;
  method: string;
  /** Flat `[name, value, ...]` with `host` (becomes `:authority` on HTTP/2). */
  headers: string[];
  body: Buffer | Readable | null;
  /** The downstream request came over HTTP/2 (for `auto` pools). */
  h2?: boolean;
}

/** undici's raw dispatch handler interface, which the HTTP/2 pool drives too. */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, raw: ReadonlyArray<Buffer | string>, resume: () => void): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: ReadonlyArray<Buffer | string> | null): void;
  onError(err: Error): void;
}

export interface UpstreamPool {
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): boolean;
  /** Graceful: in-flight requests finish first. */
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export function poolKey(s: PoolSettings): string {
  return (
    `${s.connections ?? 'inf'}/${s.connectTimeoutMs}/${s.idleTimeoutMs}/${s.maxRequestsPerConnection}` +
    `/${s.protocol ?? 'http1'}/${s.maxConcurrentStreams ?? 0}`
  );
}

export function createPool(address: string, port: number, s: PoolSettings): UpstreamPool {
  if (s.protocol === 'http2') return new H2Pool(address, port, s);
  if (s.protocol === 'auto')
    return new AutoPool(createHttp1Pool(address, port, s), new H2Pool(address, port, s));
  return createHttp1Pool(address, port, s);
}

function createHttp1Pool(address: string, port: number, s: PoolSettings): UndiciPool {
  const host = address.includes(':') ? `[${address}]` : address;
  return new Pool(`http://${host}:${port}`, {
    connections: s.connections ?? null,
    pipelining: 1,
    connect: s.transport ? s.transport.connector(s.connectTimeoutMs) : { timeout: s.connectTimeoutMs },
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
  readonly pool: UpstreamPool;
  /** TLS to this host (mTLS or DestinationRule origination); null = plaintext. */
  readonly transport: UpstreamTls | null;
  /** Requests currently dispatched to this host (for LEAST_REQUEST and /clusters). */
  active = 0;
  total = 0;
  errors = 0;
  /** Metrics label cache slot, owned by telemetry (per endpoint, so per request is free). */
  metricsSlot: unknown = undefined;
  /** Outlier detection state; moves to the host's next EndpointState on endpoint updates. */
  outlier: HostOutlier = new HostOutlier();
  /** PASSTHROUGH hosts: `total` at the last cleanup sweep (unused since then = removed). */
  sweepMark = -1;

  constructor(spec: Endpoint, pool: UpstreamPool, transport: UpstreamTls | null = null) {
    this.spec = spec;
    this.transport = transport;
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
