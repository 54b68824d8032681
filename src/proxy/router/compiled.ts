/**
 * Shapes of the compiled (per config version) routing tables the request path reads.
 * All objects are built once by compile.ts; requests only read them.
 */
import type { Re2, Redirect } from '../../tables/index.js';
import type { HeaderOpsPlan } from '../headers.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { RouteMatcher, StringMatcher } from './matchers.js';
import type { VirtualHostIndex } from './vhost-index.js';

export const RetryOnBit = {
  status5xx: 1 << 0,
  gatewayError: 1 << 1,
  reset: 1 << 2,
  connectFailure: 1 << 3,
  retriable4xx: 1 << 4,
  refusedStream: 1 << 5,
  statusCodes: 1 << 6,
  // gRPC conditions: read from grpc-status in the response headers (trailers-only replies).
  grpcCancelled: 1 << 7,
  grpcDeadlineExceeded: 1 << 8,
  grpcInternal: 1 << 9,
  grpcResourceExhausted: 1 << 10,
  grpcUnavailable: 1 << 11,
} as const;
export const GRPC_RETRY_BITS = 0xf80;

export interface CompiledRetry {
  attempts: number;
  perTryTimeoutMs: number;
  on: number;
  codes: ReadonlySet<number>;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface Target {
  cluster: ClusterState;
  /** Cumulative weight up to and including this target. */
  upTo: number;
  requestOps: HeaderOpsPlan;
  responseOps: HeaderOpsPlan;
}

export interface CompiledRewrite {
  /** 0 none, 1 replace prefix, 2 replace path, 3 regex. */
  pathMode: number;
  value: string;
  re: Re2 | null;
  authority: string | null;
}

export interface CompiledForward {
  targets: readonly Target[];
  totalWeight: number;
  timeoutMs: number;
  retry: CompiledRetry | null;
  rewrite: CompiledRewrite | null;
  mirrors: ReadonlyArray<{ cluster: ClusterState; percentage: number }>;
}

export interface CompiledCors {
  origins: readonly StringMatcher[];
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  maxAge: string;
  allowCredentials: boolean;
}

export interface CompiledFault {
  delayMs: number;
  delayPct: number;
  abortStatus: number;
  /** gRPC status of the abort for gRPC requests (-1 = map abortStatus). */
  abortGrpc: number;
  abortPct: number;
}

export enum ActionKind {
  Forward = 0,
  Redirect = 1,
  Direct = 2,
}

export interface CompiledRoute {
  name: string;
  matcher: RouteMatcher;
  kind: ActionKind;
  forward: CompiledForward | null;
  redirect: Redirect | null;
  directStatus: number;
  directBody: Buffer | null;
  fault: CompiledFault | null;
  cors: CompiledCors | null;
  /** Route then virtual-host header ops (the less specific applied last, as Envoy). */
  requestOps: readonly HeaderOpsPlan[];
  responseOps: readonly HeaderOpsPlan[];
}

export interface CompiledVirtualHost {
  name: string;
  routes: readonly CompiledRoute[];
}

export interface CompiledRouteConfig {
  name: string;
  vhosts: VirtualHostIndex<CompiledVirtualHost>;
}
