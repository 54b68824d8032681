/**
 * Upstream clusters (Envoy's CDS) and endpoints (EDS). Endpoints live in their own document
 * so the control plane can publish an endpoint change without rewriting the routes.
 */
import {
  Count,
  Enum,
  List,
  MapOf,
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
import { ClusterTlsSchema } from './tls.js';

export const ConnectionPoolSchema = Obj(
  {
    maxConnections: Opt(Count('Max upstream connections for the cluster (Istio tcp.maxConnections).')),
    http1MaxPendingRequests: Opt(Count('Requests queued waiting for a connection; overflow = 503 UO.')),
    http2MaxRequests: Opt(Count('Max concurrent requests to the cluster.')),
    maxRequestsPerConnection: Opt(Count('0 = unlimited.')),
    maxConcurrentStreams: Opt(
      Count('HTTP/2 upstream: max concurrent streams per connection (also capped by the peer SETTINGS).'),
    ),
    maxRetries: Opt(Count('Max concurrent retries across the cluster.')),
    idleTimeoutMs: Opt(Count('Close idle upstream connections after this long.')),
  },
  'Absent limits are unlimited (Istio sets 2^32-1).',
);
export type ConnectionPool = Static<typeof ConnectionPoolSchema>;

export const OutlierDetectionSchema = Obj({
  consecutive5xxErrors: Opt(Count()),
  consecutiveGatewayErrors: Opt(Count()),
  intervalMs: Opt(Count()),
  baseEjectionTimeMs: Opt(Count()),
  maxEjectionPercent: Opt(Percent()),
  minHealthPercent: Opt(Percent()),
});
export type OutlierDetection = Static<typeof OutlierDetectionSchema>;

export const ServiceRefSchema = Obj(
  {
    host: NonEmpty('FQDN, e.g. reviews.shop.svc.cluster.local (destination_service).'),
    name: NonEmpty('destination_service_name'),
    namespace: NonEmpty('destination_service_namespace'),
  },
  'The service a cluster belongs to, for metrics labels.',
);
export type ServiceRef = Static<typeof ServiceRefSchema>;

export const ClusterSchema = Obj({
  name: NonEmpty('Envoy-style: outbound|9080|v1|reviews.shop.svc.cluster.local (see names.ts).'),
  service: Opt(ServiceRefSchema),
  lbPolicy: Opt(Enum(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH'], 'Default ROUND_ROBIN.')),
  upstreamProtocol: Opt(
    Enum(
      ['http1', 'http2', 'auto'],
      'Default http1. http2 = h2c (h2 over TLS with the mTLS work); auto = the downstream ' +
        "request's protocol (Envoy USE_DOWNSTREAM_PROTOCOL).",
    ),
  ),
  connectTimeoutMs: Opt(Count('Default 10000 (Istio).')),
  connectionPool: Opt(ConnectionPoolSchema),
  outlierDetection: Opt(OutlierDetectionSchema),
  tls: Opt(ClusterTlsSchema),
});
export type Cluster = Static<typeof ClusterSchema>;

/** Identity of the workload behind an endpoint (or of the proxy itself), for metrics labels. */
export const WorkloadSchema = Obj({
  name: Opt(Str('Workload (Deployment) name.')),
  namespace: Opt(Str()),
  app: Opt(Str()),
  version: Opt(Str()),
  principal: Opt(Str('spiffe://cluster.local/ns/<ns>/sa/<sa>')),
  labels: Opt(StrMap()),
});
export type Workload = Static<typeof WorkloadSchema>;

export const LocalitySchema = Obj({ region: Opt(Str()), zone: Opt(Str()), subzone: Opt(Str()) });
export type Locality = Static<typeof LocalitySchema>;

export const EndpointSchema = Obj({
  address: NonEmpty('IP address (or host name for static configs).'),
  port: PortNum(),
  labels: Opt(StrMap()),
  locality: Opt(LocalitySchema),
  weight: Opt(Type.Integer({ minimum: 1 })),
  health: Opt(
    Enum(['HEALTHY', 'UNHEALTHY', 'DRAINING', 'UNKNOWN'], 'Default HEALTHY; UNKNOWN counts as healthy.'),
  ),
  workload: Opt(WorkloadSchema),
});
export type Endpoint = Static<typeof EndpointSchema>;

export const ENDPOINTS_API_VERSION = 'isthmus.io/endpoints/v1';

/** The endpoint document, shipped separately from the routes. */
export const EndpointTableSchema = Obj({
  apiVersion: Type.Literal(ENDPOINTS_API_VERSION),
  version: NonEmpty('Revision of this endpoint set.'),
  clusters: MapOf(List(EndpointSchema), 'Cluster name -> endpoints.'),
});
export type EndpointTable = Static<typeof EndpointTableSchema>;

export const ClusterListSchema = List(ClusterSchema);
