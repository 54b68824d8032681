/**
 * Upstream clusters (Envoy's CDS) and endpoints (EDS). Endpoints live in their own document
 * so the control plane can publish an endpoint change without rewriting the routes.
 */
import {
  Bool,
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

export const OutlierDetectionSchema = Obj(
  {
    consecutive5xxErrors: Opt(Count('Default 5 (Envoy/Istio); 0 disables 5xx ejection.')),
    consecutiveGatewayErrors: Opt(
      Count('502/503/504 and connect failures/resets/timeouts; default 0 = off.'),
    ),
    intervalMs: Opt(Count('Ejection sweep interval; default 10000.')),
    baseEjectionTimeMs: Opt(Count('Ejection time = this x times ejected (max 300 s); default 30000.')),
    maxEjectionPercent: Opt(Percent('Default 10.')),
    minHealthPercent: Opt(
      Percent('Panic threshold (Istio): below this % of available hosts, balance over all hosts. Default 0.'),
    ),
  },
  'Passive health checking (Envoy outlier detection, consecutive errors).',
);
export type OutlierDetection = Static<typeof OutlierDetectionSchema>;

export const ConsistentHashSchema = Obj(
  {
    httpHeaderName: Opt(NonEmpty('Hash the value of this request header.')),
    httpCookie: Opt(
      Obj({
        name: NonEmpty(),
        path: Opt(Str()),
        ttlMs: Opt(
          Count('Set: a missing cookie is generated and returned with Set-Cookie (0 = session cookie).'),
        ),
        attributes: Opt(
          List(Obj({ name: NonEmpty(), value: Opt(Str()) }), 'Extra attributes of the generated cookie.'),
        ),
      }),
    ),
    useSourceIp: Opt(Bool('Hash the downstream source IP.')),
    httpQueryParameterName: Opt(NonEmpty('Hash the value of this query parameter.')),
    minimumRingSize: Opt(Count('RING_HASH: minimum ring entries; default 1024.')),
    tableSize: Opt(Count('MAGLEV: lookup table size, a prime; default 65537.')),
  },
  'Hash key of RING_HASH/MAGLEV clusters: exactly one of httpHeaderName, httpCookie, useSourceIp, ' +
    'httpQueryParameterName. A request without the key gets a random host (Envoy).',
);
export type ConsistentHash = Static<typeof ConsistentHashSchema>;

/**
 * Istio localityLbSetting.failoverPriority, resolved for the proxy: an endpoint whose labels
 * equal the first n values (and not the n+1th) gets priority N-n, 0 being the best.
 */
export const FailoverPrioritySchema = List(
  Obj({
    label: NonEmpty(
      'Endpoint label key (topology.kubernetes.io/region|zone, topology.istio.io/subzone: its locality).',
    ),
    value: Opt(
      Str(
        "The value to match: the proxy's own (filled by the compiler) or a `key=value` entry; absent = label absent.",
      ),
    ),
  }),
);
export type FailoverPriority = Static<typeof FailoverPrioritySchema>;

export const LocalityLbSchema = Obj(
  {
    distribute: Opt(
      List(
        Obj({
          from: NonEmpty("Proxy locality 'region/zone/subzone', '*' wildcard at the end."),
          to: MapOf(Type.Integer({ minimum: 0, maximum: 100 }), 'Endpoint locality pattern -> weight.'),
        }),
      ),
    ),
    failover: Opt(List(Obj({ from: NonEmpty('Proxy region.'), to: NonEmpty('Failover region.') }))),
    failoverPriority: Opt(FailoverPrioritySchema),
  },
  "Locality-aware balancing from the proxy's node.locality: endpoints of the same locality first, " +
    'then same zone, same region, failover region, others (Envoy priorities); or `distribute` weights; ' +
    'or `failoverPriority` label matching (combined with `failover` when both are set).',
);
export type LocalityLb = Static<typeof LocalityLbSchema>;

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
  lbPolicy: Opt(
    Enum(
      ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH', 'RING_HASH', 'MAGLEV'],
      'Default ROUND_ROBIN. PASSTHROUGH = the original destination of a captured connection. ' +
        'RING_HASH/MAGLEV hash the key in consistentHash.',
    ),
  ),
  consistentHash: Opt(ConsistentHashSchema),
  localityLb: Opt(LocalityLbSchema),
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

export const LocalitySchema = Obj({ region: Opt(Str()), zone: Opt(Str()), subzone: Opt(Str()) });
export type Locality = Static<typeof LocalitySchema>;

/** Identity of the workload behind an endpoint (or of the proxy itself), for metrics labels. */
export const WorkloadSchema = Obj({
  name: Opt(Str('Workload (Deployment) name.')),
  namespace: Opt(Str()),
  app: Opt(Str()),
  version: Opt(Str()),
  principal: Opt(Str('spiffe://cluster.local/ns/<ns>/sa/<sa>')),
  labels: Opt(StrMap()),
  locality: Opt(LocalitySchema),
});
export type Workload = Static<typeof WorkloadSchema>;

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
