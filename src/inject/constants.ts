/**
 * The one place that names the ports, identities, container/volume names, annotations and labels that
 * injection reads or writes. The sidecar template (webhooks/sidecar-template.yaml) refers to the port
 * numbers and identities through `${ports.*}` / `${proxyUID}` placeholders so the numbers live only here.
 */

/** Well-known ports, as Istio assigns them (see istio-facts.md, "Ports and identities"). */
export { PORTS, PROXY_GID, PROXY_UID } from '../api/mesh.js';

import { PORTS } from '../api/mesh.js';

/**
 * Inbound ports the init container never captures: the proxy's own metrics and health endpoints, which
 * kubelet and Prometheus reach directly. The status port is added separately so the
 * `traffic.sidecar.istio.io/excludeInboundPorts` annotation carries it the way Istio writes it.
 */
export const ALWAYS_EXCLUDED_INBOUND_PORTS: readonly number[] = [PORTS.prometheus, PORTS.health];

/** UID and GID of the proxy; iptables returns this owner's traffic so the proxy never loops. */

export const PROXY_CONTAINER_NAME = 'istio-proxy';
export const INIT_CONTAINER_NAME = 'istio-init';

/** Audience of the projected service-account token the agent presents to the CA. */
export const TOKEN_AUDIENCE = 'istio-ca';
export const TOKEN_EXPIRATION_SECONDS = 43200;

/** Path prefix of rewritten app probes on the status port: `/app-health/<container>/<kind>`. */
export const APP_HEALTH_PREFIX = '/app-health/';
export const PROBE_SUFFIX = {
  readinessProbe: 'readyz',
  livenessProbe: 'livez',
  startupProbe: 'startupz',
} as const;
/** Env var on the proxy holding the original app probes, keyed by rewritten path (Istio's name). */
export const KUBE_APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';

/** Annotations read or written at injection (Istio's names). */
export const ANNOTATIONS = {
  inject: 'sidecar.istio.io/inject',
  status: 'sidecar.istio.io/status',
  proxyImage: 'sidecar.istio.io/proxyImage',
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  logLevel: 'sidecar.istio.io/logLevel',
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  rewriteAppHTTPProbers: 'sidecar.istio.io/rewriteAppHTTPProbers',
  nativeSidecar: 'sidecar.istio.io/nativeSidecar',
  proxyConfig: 'proxy.istio.io/config',
  proxyOverrides: 'proxy.istio.io/overrides',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
} as const;

/** Labels read or written at injection. */
export const LABELS = {
  /** Pod label opt-in/out; the current API (the annotation of the same name is legacy). */
  inject: 'sidecar.istio.io/inject',
  /** Namespace label: `enabled` opts the namespace in, `disabled` out. */
  namespaceInjection: 'istio-injection',
  tlsMode: 'security.istio.io/tlsMode',
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
} as const;

/** Namespaces Istio never injects besides the control plane's own. */
export const IGNORED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

/** Interception modes the init container understands (`-m`); NONE injects the proxy without capture. */
export const INTERCEPTION_MODES = ['REDIRECT', 'TPROXY', 'NONE'] as const;
export type InterceptionMode = (typeof INTERCEPTION_MODES)[number];

/** Proxy log levels accepted in `sidecar.istio.io/logLevel` (Envoy's names, `warn` as an alias). */
export const LOG_LEVELS: readonly string[] = [
  'trace',
  'debug',
  'info',
  'warning',
  'warn',
  'error',
  'critical',
  'off',
];

/** First Kubernetes minor version (1.x) with native sidecars (init containers with restartPolicy Always) on by default. */
export const NATIVE_SIDECAR_MIN_MINOR = 29;

/** Istio's default resources: proxy requests 100m/128Mi, limits 2 CPU/1Gi; init 10m/10Mi, limits 100m/50Mi. */
export const DEFAULT_PROXY_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '2', memory: '1Gi' },
} as const;
export const DEFAULT_INIT_RESOURCES = {
  requests: { cpu: '10m', memory: '10Mi' },
  limits: { cpu: '100m', memory: '50Mi' },
} as const;
