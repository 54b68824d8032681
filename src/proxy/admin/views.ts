/**
 * Text and JSON views of the proxy state for the admin port, in Envoy's formats where
 * Envoy has one (`/clusters`: `<cluster>::<host>::<stat>::<value>`, `/stats`: `name: value`).
 */
import type { ListenerStats } from '../http/recorder.js';
import { escapeLabel } from '../telemetry/istio-metrics.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';

export interface ConfigStatus {
  version: string;
  accepted: number;
  rejected: number;
  endpointsVersion: string;
  endpointsAccepted: number;
  endpointsRejected: number;
  lastRejection: { version: string; at: string; errors: Array<{ path: string; message: string }> } | null;
}

export function clustersText(clusters: Iterable<ClusterState>): string {
  const out: string[] = [];
  for (const c of clusters) {
    const cp = c.def.connectionPool ?? {};
    out.push(`${c.name}::default_priority::max_connections::${cp.maxConnections ?? 4294967295}`);
    out.push(
      `${c.name}::default_priority::max_pending_requests::${cp.http1MaxPendingRequests ?? 4294967295}`,
    );
    out.push(`${c.name}::default_priority::max_retries::${cp.maxRetries ?? 4294967295}`);
    for (const h of c.originalDst.size ? [...c.hosts, ...c.originalDst.values()] : c.hosts) {
      const p = `${c.name}::${h.key}`;
      out.push(`${p}::rq_active::${h.active}`, `${p}::rq_total::${h.total}`, `${p}::rq_error::${h.errors}`);
      out.push(`${p}::weight::${h.weight}`);
      out.push(`${p}::health_flags::${healthFlags(c, h)}`);
      const locality = h.spec.locality;
      if (locality) out.push(`${p}::region::${locality.region ?? ''}`, `${p}::zone::${locality.zone ?? ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** Envoy's health flags: `healthy`, or `/failed_outlier_check`, `/failed_eds_health`, ... */
function healthFlags(c: ClusterState, h: EndpointState): string {
  const ejected = c.outlier !== null && h.outlier.ejected;
  if (h.healthy && !ejected) return 'healthy';
  return `${ejected ? '/failed_outlier_check' : ''}${h.healthy ? '' : '/failed_eds_health'}`;
}

export function clustersJson(clusters: Iterable<ClusterState>): unknown {
  return {
    cluster_statuses: [...clusters].map((c) => ({
      name: c.name,
      host_statuses: c.hosts.map((h) => ({
        address: { socket_address: { address: h.address, port_value: h.port } },
        stats: { rq_active: h.active, rq_total: h.total, rq_error: h.errors },
        health_status: {
          eds_health_status: h.spec.health ?? 'HEALTHY',
          ...(c.outlier !== null && h.outlier.ejected ? { failed_outlier_check: true } : {}),
        },
        weight: h.weight,
        locality: h.spec.locality ?? {},
      })),
    })),
  };
}

export function statsText(
  clusters: Iterable<ClusterState>,
  listeners: ReadonlyArray<{ name: string; stats: ListenerStats }>,
  status: ConfigStatus,
): string {
  const out: string[] = [];
  for (const c of clusters) {
    const s = c.stats;
    const p = `cluster.${c.name}`;
    out.push(
      `${p}.membership_healthy: ${c.healthy.length}`,
      `${p}.membership_total: ${c.hosts.length}`,
      `${p}.upstream_rq_total: ${s.rqTotal}`,
      `${p}.upstream_rq_active: ${c.active}`,
      `${p}.upstream_rq_pending_active: ${s.rqPendingActive}`,
      `${p}.upstream_rq_pending_overflow: ${s.rqPendingOverflow}`,
      `${p}.upstream_rq_retry: ${s.rqRetry}`,
      `${p}.upstream_rq_retry_overflow: ${s.rqRetryOverflow}`,
      `${p}.upstream_rq_timeout: ${s.rqTimeout}`,
      `${p}.upstream_rq_reset: ${s.rqReset}`,
      `${p}.upstream_cx_connect_fail: ${s.cxConnectFail}`,
      `${p}.upstream_cx_none_healthy: ${s.rqNoHealthy}`,
      `${p}.lb_healthy_panic: ${c.panic ? 1 : 0}`,
    );
    if (c.outlier !== null) {
      const o = s.outlier;
      const q = `${p}.outlier_detection`;
      out.push(
        `${q}.ejections_active: ${c.outlier.ejectedCount()}`,
        `${q}.ejections_enforced_total: ${o.ejectionsEnforcedTotal}`,
        `${q}.ejections_overflow: ${o.ejectionsOverflow}`,
        `${q}.ejections_enforced_consecutive_5xx: ${o.ejectionsEnforcedConsecutive5xx}`,
        `${q}.ejections_detected_consecutive_5xx: ${o.ejectionsDetectedConsecutive5xx}`,
        `${q}.ejections_enforced_consecutive_gateway_failure: ${o.ejectionsEnforcedConsecutiveGatewayFailure}`,
        `${q}.ejections_detected_consecutive_gateway_failure: ${o.ejectionsDetectedConsecutiveGatewayFailure}`,
      );
    }
  }
  for (const l of listeners) {
    out.push(
      `http.${l.name}.downstream_rq_total: ${l.stats.rqTotal}`,
      `http.${l.name}.no_route: ${l.stats.rqNoRoute}`,
    );
  }
  out.push(
    `isthmus.config.version: ${status.version}`,
    `isthmus.config.update_success: ${status.accepted}`,
    `isthmus.config.update_rejected: ${status.rejected}`,
    `isthmus.endpoints.version: ${status.endpointsVersion}`,
    `isthmus.endpoints.update_success: ${status.endpointsAccepted}`,
    `isthmus.endpoints.update_rejected: ${status.endpointsRejected}`,
  );
  return `${out.join('\n')}\n`;
}

/** Proxy-level Prometheus series besides Istio's (config health, circuit breakers). */
export function proxyPrometheus(clusters: Iterable<ClusterState>, status: ConfigStatus): string {
  const out: string[] = [
    '# TYPE isthmus_config_updates_total counter',
    `isthmus_config_updates_total{type="tables",result="accepted"} ${status.accepted}`,
    `isthmus_config_updates_total{type="tables",result="rejected"} ${status.rejected}`,
    `isthmus_config_updates_total{type="endpoints",result="accepted"} ${status.endpointsAccepted}`,
    `isthmus_config_updates_total{type="endpoints",result="rejected"} ${status.endpointsRejected}`,
    '# TYPE isthmus_config_info gauge',
    `isthmus_config_info{version="${escapeLabel(status.version)}",endpoints_version="${escapeLabel(status.endpointsVersion)}"} 1`,
    '# TYPE envoy_cluster_upstream_rq_pending_overflow counter',
  ];
  const list = [...clusters];
  for (const c of list) {
    out.push(
      `envoy_cluster_upstream_rq_pending_overflow{cluster_name="${escapeLabel(c.name)}"} ${c.stats.rqPendingOverflow}`,
    );
  }
  out.push('# TYPE envoy_cluster_upstream_rq_retry counter');
  for (const c of list) {
    out.push(`envoy_cluster_upstream_rq_retry{cluster_name="${escapeLabel(c.name)}"} ${c.stats.rqRetry}`);
  }
  const detected = list.filter((c) => c.outlier !== null);
  if (detected.length) {
    out.push('# TYPE envoy_cluster_outlier_detection_ejections_enforced_total counter');
    for (const c of detected)
      out.push(
        `envoy_cluster_outlier_detection_ejections_enforced_total{cluster_name="${escapeLabel(c.name)}"} ${c.stats.outlier.ejectionsEnforcedTotal}`,
      );
    out.push('# TYPE envoy_cluster_outlier_detection_ejections_active gauge');
    for (const c of detected)
      out.push(
        `envoy_cluster_outlier_detection_ejections_active{cluster_name="${escapeLabel(c.name)}"} ${c.outlier!.ejectedCount()}`,
      );
  }
  return `${out.join('\n')}\n`;
}
