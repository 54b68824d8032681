/**
 * Routing part of the compiled config: route configs -> virtual hosts -> ordered routes.
 * Durations are integer milliseconds: the compiler parses Istio durations once so the proxy
 * never does.
 */
import {
  Bool,
  Count,
  Enum,
  List,
  NonEmpty,
  Obj,
  Opt,
  Percent,
  PortNum,
  type Static,
  Str,
  StrMap,
  Type,
} from './kit.js';
import { RouteMatchSchema, StringMatchSchema } from './match.js';

export const HeaderOpsSchema = Obj(
  {
    set: Opt(StrMap('Replace (or create) these headers.')),
    add: Opt(StrMap('Append these headers (keeps existing values).')),
    remove: Opt(List(NonEmpty(), 'Remove these headers (case-insensitive names).')),
  },
  'Applied in the order remove, set, add (as Envoy does).',
);
export type HeaderOps = Static<typeof HeaderOpsSchema>;

export const WeightedClusterSchema = Obj({
  cluster: NonEmpty('Name of a cluster in `clusters`.'),
  weight: Count('Relative weight; 0 = never chosen. The route total must be > 0.'),
  requestHeaders: Opt(HeaderOpsSchema),
  responseHeaders: Opt(HeaderOpsSchema),
});
export type WeightedCluster = Static<typeof WeightedClusterSchema>;

export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  // gRPC conditions: grpc-status of the response headers (trailers-only replies), gRPC requests only.
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
export type RetryOn = (typeof RETRY_ON)[number];

export const RetryPolicySchema = Obj({
  attempts: Count('Retries after the first try (Istio `attempts`). 0 disables retries.'),
  perTryTimeoutMs: Opt(Count('Per-try timeout; 0/absent = bounded by the route timeout only.')),
  retryOn: List(Enum([...RETRY_ON])),
  retriableStatusCodes: Opt(List(Type.Integer({ minimum: 100, maximum: 599 }))),
  backoffBaseMs: Opt(Count('Base of the jittered exponential backoff (Envoy default 25 ms).')),
  backoffMaxMs: Opt(Count('Cap of the backoff (default 10x base).')),
});
export type RetryPolicy = Static<typeof RetryPolicySchema>;

export const RewriteSchema = Obj(
  {
    pathPrefix: Opt(Str('Replace the matched path prefix (route must use a prefix match).')),
    path: Opt(Str('Replace the whole path (query string kept).')),
    pathRegex: Opt(
      Obj({
        pattern: NonEmpty('RE2 pattern.'),
        substitution: Str('Replacement; `\\1` style group references, as Istio/Envoy.'),
      }),
    ),
    authority: Opt(NonEmpty('New Host/authority header sent upstream.')),
  },
  'At most one of pathPrefix/path/pathRegex.',
);
export type Rewrite = Static<typeof RewriteSchema>;

export const MirrorSchema = Obj({
  cluster: NonEmpty(),
  percentage: Opt(Percent('Share of requests mirrored; default 100.')),
});
export type Mirror = Static<typeof MirrorSchema>;

export const ForwardActionSchema = Obj({
  clusters: List(WeightedClusterSchema, 'Weighted split; one entry = all traffic.'),
  timeoutMs: Opt(Count('Total budget across all tries; 0/absent = no timeout (Istio default).')),
  retries: Opt(RetryPolicySchema),
  rewrite: Opt(RewriteSchema),
  mirrors: Opt(List(MirrorSchema, 'Fire-and-forget copies; responses are discarded.')),
});
export type ForwardAction = Static<typeof ForwardActionSchema>;

export const RedirectSchema = Obj({
  scheme: Opt(Enum(['http', 'https'])),
  host: Opt(NonEmpty('Replaces the host part of the authority.')),
  port: Opt(PortNum('Explicit port in Location; absent keeps the request port only if host is kept.')),
  path: Opt(Str('Replaces the whole path.')),
  pathPrefix: Opt(Str('Replaces the matched prefix (prefix matches only).')),
  stripQuery: Opt(Bool()),
  code: Opt(Type.Union([301, 302, 303, 307, 308].map((c) => Type.Literal(c)))),
});
export type Redirect = Static<typeof RedirectSchema>;

export const DirectResponseSchema = Obj({
  status: Type.Integer({ minimum: 200, maximum: 599 }),
  body: Opt(Str('Sent as text/plain.')),
});
export type DirectResponse = Static<typeof DirectResponseSchema>;

export const FaultSchema = Obj({
  delay: Opt(Obj({ fixedDelayMs: Count(), percentage: Opt(Percent('Default 100.')) })),
  abort: Opt(
    Obj(
      {
        httpStatus: Opt(Type.Integer({ minimum: 200, maximum: 599 })),
        grpcStatus: Opt(
          Type.Integer({ minimum: 0, maximum: 16, description: 'gRPC status code (UNAVAILABLE = 14).' }),
        ),
        percentage: Opt(Percent('Default 100.')),
      },
      'At least one of httpStatus, grpcStatus. gRPC requests get grpcStatus (else the mapped ' +
        'httpStatus) as a trailers-only reply; other requests get httpStatus (else the mapped grpcStatus).',
    ),
  ),
});
export type Fault = Static<typeof FaultSchema>;

export const CorsSchema = Obj({
  allowOrigins: List(StringMatchSchema),
  allowMethods: Opt(List(NonEmpty())),
  allowHeaders: Opt(List(NonEmpty())),
  exposeHeaders: Opt(List(NonEmpty())),
  maxAgeSeconds: Opt(Count()),
  allowCredentials: Opt(Bool()),
});
export type Cors = Static<typeof CorsSchema>;

export const RouteSchema = Obj(
  {
    name: Opt(Str('For stats and config_dump (e.g. `reviews.shop/0/1`).')),
    match: Opt(RouteMatchSchema),
    forward: Opt(ForwardActionSchema),
    redirect: Opt(RedirectSchema),
    directResponse: Opt(DirectResponseSchema),
    fault: Opt(FaultSchema),
    cors: Opt(CorsSchema),
    requestHeaders: Opt(HeaderOpsSchema),
    responseHeaders: Opt(HeaderOpsSchema),
  },
  'Exactly one of forward, redirect, directResponse.',
);
export type Route = Static<typeof RouteSchema>;

export const VirtualHostSchema = Obj({
  name: NonEmpty(),
  domains: List(
    NonEmpty(),
    'Host[:port] values: exact, `*.suffix`, `prefix.*` or `*`; the most specific wins.',
  ),
  routes: List(RouteSchema, 'Ordered; first match wins; none = 404 NR.'),
  cors: Opt(CorsSchema),
  requestHeaders: Opt(HeaderOpsSchema),
  responseHeaders: Opt(HeaderOpsSchema),
});
export type VirtualHost = Static<typeof VirtualHostSchema>;

export const RouteConfigSchema = Obj({
  name: NonEmpty('E.g. "9080" for the outbound routes of port 9080, or "inbound|9080||".'),
  port: Opt(PortNum('Destination port this config serves; used by `routeByPort` listeners.')),
  virtualHosts: List(VirtualHostSchema),
});
export type RouteConfig = Static<typeof RouteConfigSchema>;
