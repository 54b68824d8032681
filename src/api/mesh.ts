/** Mesh-wide facts with one source of truth (Istio's values, which users and tools rely on). */
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const CLUSTER_DOMAIN = 'svc.cluster.local';

/** The controller's Deployment/Service name. */
export const CONTROLLER_SERVICE = 'isthmus-controller';

export const PORTS = {
  /** Proxy admin, pod-local only. */
  admin: 15000,
  /** iptables REDIRECT target for outbound traffic. */
  outboundCapture: 15001,
  /** iptables REDIRECT target for inbound traffic. */
  inboundCapture: 15006,
  /** Agent: merged metrics, app probe rewrite (`/app-health/...`), `/quitquitquit`. */
  status: 15020,
  /** Agent health: `/healthz/ready`. */
  health: 15021,
  /** Proxy Prometheus metrics. */
  prometheus: 15090,
  /** Control plane CA / discovery (TLS). */
  controlPlaneXds: 15012,
  /** Control plane monitoring. */
  controlPlaneMonitoring: 15014,
  /** Control plane admission webhooks (`/inject`, `/validate`), exposed by the Service on 443. */
  webhooks: 15017,
} as const;

/** The UID/GID the proxy runs as; iptables exempts its traffic from capture. */
export const PROXY_UID = 1337;
export const PROXY_GID = 1337;
