/**
 * Types shared by the injector, the admission handler and `kube-inject`. Pods are plain JSON objects
 * shaped like the Kubernetes API types (`V1Pod`); nothing here depends on a live cluster.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { SidecarTemplate } from './template.js';

export type Pod = V1Pod;

/** Resource requests/limits as Kubernetes quantities. */
export interface ResourceSpec {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

/**
 * Mesh-wide values injection renders with. Build one with `defaultInjectContext()` and override what the
 * installation changes; every field is required so a rendered pod never depends on hidden defaults.
 */
export interface InjectContext {
  /** Image of both the init container and the proxy, e.g. `docker.io/isthmus/isthmus:0.1.0`. */
  proxyImage: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Namespace of the control plane; never injected. */
  controlPlaneNamespace: string;
  /** Kubernetes version of the cluster (`v1.30.2`, `1.29`); `undefined` = unknown, so no native sidecars. */
  clusterVersion: string | undefined;
  /** Forces native sidecars on or off regardless of `clusterVersion`. */
  nativeSidecars: boolean | undefined;
  trustDomain: string;
  clusterDomain: string;
  clusterId: string;
  /** CA (CSR signing) address, e.g. `isthmus-controller.istio-system.svc:15012`. */
  caAddress: string;
  /** xDS discovery address; Istio serves both on the same port. */
  discoveryAddress: string;
  revision: string;
  /** Mesh defaults for the `traffic.sidecar.istio.io/*` annotations when a pod does not set them. */
  includeOutboundIPRanges: string;
  excludeOutboundIPRanges: string;
  excludeInboundPorts: string;
  excludeOutboundPorts: string;
  interceptionMode: 'REDIRECT' | 'TPROXY' | 'NONE';
  logLevel: string;
  /** Default for `sidecar.istio.io/rewriteAppHTTPProbers`. */
  rewriteAppHTTPProbes: boolean;
  /** Mesh default for ProxyConfig `holdApplicationUntilProxyStarts`. */
  holdApplicationUntilProxyStarts: boolean;
  proxyResources: ResourceSpec;
  initResources: ResourceSpec;
  /** The sidecar template; `undefined` = the bundled `webhooks/sidecar-template.yaml`. */
  template: SidecarTemplate | undefined;
}

/** The workload a pod belongs to, for proxy metadata (Deployment `reviews`, Job `backup`, ...). */
export interface WorkloadMeta {
  name: string;
  kind: string;
  apiVersion: string;
}

/** Per-call facts that are not part of the pod object itself. */
export interface InjectTarget {
  /** Namespace of the pod when `metadata.namespace` is empty (admission request, kube-inject manifest). */
  namespace?: string;
  /** Owning workload; derived from owner references / generateName when absent. */
  workload?: WorkloadMeta;
}

/** Why a pod was left alone. Stable codes: they feed events, metrics and CLI messages. */
export type SkipReason =
  | 'host-network'
  | 'opted-out'
  | 'already-injected'
  | 'control-plane-namespace'
  | 'ignored-namespace'
  | 'namespace-not-enabled';

/** One bad input, naming where it came from. */
export interface InjectError {
  /** Annotation or field the problem is in, e.g. `traffic.sidecar.istio.io/excludeInboundPorts`. */
  field: string;
  value: string;
  message: string;
}

export type InjectResult =
  | { kind: 'injected'; pod: Pod; warnings: string[] }
  | { kind: 'skipped'; reason: SkipReason; message: string; warnings: string[] }
  | { kind: 'error'; errors: InjectError[]; message: string };
