/**
 * The service registry model: what the compiler knows about services and their endpoints,
 * independent of where they came from (Kubernetes objects, ServiceEntries, later other
 * registries). Plain data, so a snapshot can be hashed, diffed and shipped between processes.
 */
import type { DestinationRuleSpec } from '../api/networking/destination-rule.js';
import type { GatewaySpec } from '../api/networking/gateway.js';
import type { SidecarSpec } from '../api/networking/sidecar.js';
import type { VirtualServiceSpec } from '../api/networking/virtual-service.js';

/** Istio's protocol names (`protocol.Instance`); `UNSUPPORTED` means "sniff" (auto-detect). */
export type Protocol =
  | 'HTTP'
  | 'HTTP2'
  | 'GRPC'
  | 'GRPC-WEB'
  | 'HTTPS'
  | 'TLS'
  | 'TCP'
  | 'MONGO'
  | 'REDIS'
  | 'MYSQL'
  | 'UDP'
  | 'UNSUPPORTED';

export interface ServicePort {
  /** Port name (`http-web`); the key endpoints use to give their own port number. */
  name: string;
  port: number;
  /** Kubernetes targetPort (number or container port name) or ServiceEntry targetPort. */
  targetPort?: number | string;
  protocol: Protocol;
}

export type Resolution = 'STATIC' | 'DNS' | 'NONE';

export interface MeshService {
  /** `<namespace>/<hostname>`: unique key of the service in the snapshot. */
  key: string;
  /** FQDN (`reviews.shop.svc.cluster.local`) or a ServiceEntry host (may be `*.example.com`). */
  hostname: string;
  /** Kubernetes Service name, or the ServiceEntry host. */
  name: string;
  namespace: string;
  ports: ServicePort[];
  /** ClusterIP(s) or ServiceEntry addresses; empty for headless services. */
  addresses: string[];
  /** Raw exportTo; empty = the mesh default (`*`). */
  exportTo: string[];
  /** STATIC: endpoints from the registry (EDS); DNS: addresses are host names; NONE: passthrough. */
  resolution: Resolution;
  meshExternal: boolean;
  registry: 'Kubernetes' | 'ServiceEntry';
  /** Pod selector (Kubernetes Service selector, ServiceEntry workloadSelector). */
  selector?: Record<string, string>;
  creationTimestamp?: string;
}

export interface Locality {
  region?: string;
  zone?: string;
  subzone?: string;
}

export interface MeshEndpoint {
  /** IP address, or a host name for DNS ServiceEntries (the proxy resolves it). */
  address: string;
  /** Service port name -> endpoint port number. */
  ports: Record<string, number>;
  labels: Record<string, string>;
  namespace: string;
  serviceAccount?: string;
  /** Deployment-like workload name (from owner references), for metrics labels. */
  workloadName?: string;
  podName?: string;
  locality?: Locality;
  ready: boolean;
  weight?: number;
}

/** One mesh config object (VirtualService, DestinationRule, ...) with the metadata that matters. */
export interface ConfigResource<S> {
  kind: string;
  name: string;
  namespace: string;
  spec: S;
  creationTimestamp?: string;
  /** Annotations that change the meaning of the object (only `istio.io/dry-run` is kept). */
  annotations?: Record<string, string>;
}

export type VirtualServiceConfig = ConfigResource<VirtualServiceSpec>;
export type DestinationRuleConfig = ConfigResource<DestinationRuleSpec>;
export type SidecarConfig = ConfigResource<SidecarSpec>;
export type GatewayConfig = ConfigResource<GatewaySpec>;

/** Mesh-wide settings (the subset of Istio's MeshConfig the compiler reads). */
export interface MeshSettings {
  rootNamespace: string;
  /** Istio default ALLOW_ANY: unknown hosts pass through; REGISTRY_ONLY: 502. */
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /**
   * MeshConfig `accessLogFile` / `accessLogEncoding` / `accessLogFormat`; absent = off (Istio's
   * default). Copied into every proxy's tables (`telemetry.accessLog`).
   */
  accessLog?: MeshAccessLog;
}

export interface MeshAccessLog {
  file: string;
  encoding?: 'TEXT' | 'JSON';
  format?: string;
}

/**
 * Everything the compiler reads, at one point in time. Lists are sorted (see snapshot.ts) so
 * that equal inputs give equal snapshots and equal `version`s.
 */
export interface MeshSnapshot {
  mesh: MeshSettings;
  services: MeshService[];
  /** Service key -> endpoints (only services that have any). */
  endpoints: Map<string, MeshEndpoint[]>;
  virtualServices: VirtualServiceConfig[];
  destinationRules: DestinationRuleConfig[];
  sidecars: SidecarConfig[];
  gateways: GatewayConfig[];
  /** Kept for the security compiler (later); not read by the traffic compiler. */
  peerAuthentications: ConfigResource<unknown>[];
  /** AuthorizationPolicies (absent = none; read by compiler/security.ts). */
  authorizationPolicies?: ConfigResource<unknown>[];
  /** RequestAuthentications (absent = none; read by compiler/security.ts). */
  requestAuthentications?: ConfigResource<unknown>[];
  /** Content hash of all of the above. */
  version: string;
}

/** The identity a proxy is compiled for: pods with equal namespace + labels + SA share tables. */
export interface WorkloadIdentity {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** Pod annotations the compiler reads (`isthmus.io/local-rate-limit*`); absent = none. */
  annotations?: Record<string, string>;
  /**
   * Where the workload runs: the `istio-locality` pod label, else its node's topology labels.
   * Absent when unknown or when the pods of the class run in different localities (one
   * tables document serves the whole class).
   */
  locality?: Locality;
}
