/** DestinationRule (networking.istio.io): policies applied to traffic for a service after routing. */

import {
  Bool,
  Duration,
  Enum,
  Int,
  List,
  MapOf,
  Num,
  Obj,
  type Static,
  Str,
  StrMap,
  Type,
  UInt,
} from '../schema-kit.js';
import { ConnectionPoolSettings, PortSelector, TlsMode, WorkloadSelector } from './common.js';

/** protobuf uint64 (ring and table sizes): JSON integer >= 0 without the uint32 bound. */
const UInt64 = (description: string) => Type.Integer({ minimum: 0, description });

const ConsistentHashLB = Obj(
  {
    httpHeaderName: Str('Hash based on a specific HTTP header.'),
    httpCookie: Obj({
      name: Str('Name of the cookie.'),
      path: Str('Path to set for the cookie.'),
      ttl: Duration('Lifetime of the cookie; 0s makes a session cookie.'),
      attributes: List(Obj({ name: Str(), value: Str() }), 'Additional attributes of the generated cookie.'),
    }),
    useSourceIp: Bool('Hash based on the source IP address.'),
    httpQueryParameterName: Str('Hash based on a specific HTTP query parameter.'),
    ringHash: Obj({ minimumRingSize: UInt64('The minimum number of virtual nodes for the hash ring.') }),
    maglev: Obj({ tableSize: UInt64('The table size for Maglev hashing; a prime below 5000011.') }),
    minimumRingSize: UInt64('Deprecated: use ringHash.minimumRingSize.'),
  },
  'One hash key (httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName) and at most one of ringHash or maglev.',
);

const LocalityLoadBalancerSetting = Obj({
  distribute: List(
    Obj({
      from: Str("Originating locality, '/' separated, e.g. 'region/zone/sub_zone'."),
      to: MapOf(UInt(), 'Map of upstream localities to traffic distribution weights (summing to 100).'),
    }),
  ),
  failover: List(Obj({ from: Str('Originating region.'), to: Str('Destination region on failover.') })),
  failoverPriority: List(
    Str(),
    'Ordered list of labels used to sort endpoints for priority based load balancing.',
  ),
  enabled: Bool('Enable locality load balancing (overrides the mesh-wide setting).'),
});

const LoadBalancerSettings = Obj(
  {
    simple: Enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']),
    consistentHash: ConsistentHashLB,
    localityLbSetting: LocalityLoadBalancerSetting,
    warmupDurationSecs: Duration('Warmup duration of new endpoints (deprecated: use warmup).'),
    warmup: Obj({
      duration: Duration('Warmup duration of new endpoints.'),
      minimumPercent: Num('Minimum percentage of traffic a warming endpoint receives.'),
      aggression: Num('How fast traffic increases during warmup.'),
    }),
  },
  'Only one of simple or consistentHash.',
);

const OutlierDetection = Obj({
  consecutiveErrors: Int('Deprecated: use consecutiveGatewayErrors or consecutive5xxErrors.'),
  splitExternalLocalOriginErrors: Bool('Distinguish local origin failures from external errors.'),
  consecutiveLocalOriginFailures: UInt('Consecutive locally originated failures before ejection.'),
  consecutiveGatewayErrors: UInt('Number of gateway errors (502, 503, 504) before a host is ejected.'),
  consecutive5xxErrors: UInt('Number of 5xx errors before a host is ejected.'),
  interval: Duration('Time interval between ejection sweep analysis.'),
  baseEjectionTime: Duration('Minimum ejection duration.'),
  maxEjectionPercent: Int('Maximum % of hosts in the load balancing pool that can be ejected.'),
  minHealthPercent: Int('Outlier detection is enabled while at least this % of hosts is healthy.'),
});

/** Client-side TLS settings for connections to the upstream (ClientTLSSettings). */
export const ClientTLSSettings = Obj({
  mode: Enum([...TlsMode], 'TLS connection mode (DISABLE when unset).'),
  clientCertificate: Str(
    'Path to the client-side TLS certificate; required for MUTUAL without credentialName.',
  ),
  privateKey: Str("Path to the client's private key; required for MUTUAL without credentialName."),
  caCertificates: Str('Path to the CA certificates used to verify the server certificate.'),
  credentialName: Str('Name of the secret that holds the client certificate, key and CA certificates.'),
  subjectAltNames: List(Str(), 'Alternate names to verify the subject identity in the server certificate.'),
  sni: Str('SNI string to present to the server during the TLS handshake.'),
  insecureSkipVerify: Bool('Skip verifying the CA signature and SAN of the server certificate.'),
  caCrl: Str('Path to the certificate revocation list.'),
});

const PortTrafficPolicy = Obj({
  port: PortSelector,
  loadBalancer: LoadBalancerSettings,
  connectionPool: ConnectionPoolSettings,
  outlierDetection: OutlierDetection,
  tls: ClientTLSSettings,
});

export const TrafficPolicy = Obj({
  loadBalancer: LoadBalancerSettings,
  connectionPool: ConnectionPoolSettings,
  outlierDetection: OutlierDetection,
  tls: ClientTLSSettings,
  portLevelSettings: List(PortTrafficPolicy, 'Traffic policies specific to individual ports.'),
  tunnel: Obj({
    protocol: Str('CONNECT (default) or POST.'),
    targetHost: Str('FQDN or IP address the downstream connection is tunneled to.'),
    targetPort: UInt('Port the downstream connection is tunneled to.'),
  }),
  proxyProtocol: Obj({ version: Enum(['V1', 'V2'], 'The PROXY protocol version (V1 when unset).') }),
  retryBudget: Obj({
    percent: Num('Maximum % of active requests that may be retries.'),
    minRetryConcurrency: UInt('Number of concurrent retries always allowed.'),
  }),
});

const Subset = Obj({
  name: Str('Name of the subset.'),
  labels: StrMap('Labels selecting the endpoints of the subset.'),
  trafficPolicy: TrafficPolicy,
});

export const DestinationRuleSpec = Obj({
  host: Str('The name of a service from the service registry.'),
  trafficPolicy: TrafficPolicy,
  subsets: List(Subset, 'One or more named sets that represent individual versions of a service.'),
  exportTo: List(Str(), 'A list of namespaces to which this destination rule is exported.'),
  workloadSelector: WorkloadSelector,
});

export type DestinationRuleSpec = Static<typeof DestinationRuleSpec>;
export type TrafficPolicy = Static<typeof TrafficPolicy>;
export type ClientTLSSettings = Static<typeof ClientTLSSettings>;
