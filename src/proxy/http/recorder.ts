/**
 * End-of-request accounting for one listener: Istio metrics (with the listener's reporter),
 * listener counters and, when configured, the span and access log line (telemetry/
 * request-telemetry.ts). One instance per listener, so the per-request call passes only
 * what varies. Without tracing and access log `telemetry` is null: one branch per request.
 */
import type { Logger } from 'winston';
import type { IstioMetrics, Reporter } from '../telemetry/istio-metrics.js';
import type { ProxyTelemetry } from '../telemetry/request-telemetry.js';
import type { PeerIdentity } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';
import type { Downstream } from './downstream.js';

export class ListenerStats {
  rqTotal = 0;
  rqNoRoute = 0;
  rqLocal = 0;
  downstreamErrors = 0;
}

export class RequestRecorder {
  readonly stats = new ListenerStats();

  constructor(
    readonly metrics: IstioMetrics,
    readonly reporter: Reporter,
    readonly log: Logger,
    /** Replaced when the access log is turned on/off by a new config (ListenerManager.setTelemetry). */
    public telemetry: ProxyTelemetry | null = null,
  ) {}

  /** Trace propagation (and request id, route) for a request going upstream with `headers`. */
  forwarded(stream: Downstream, raw: readonly string[], headers: string[], route: string): void {
    this.telemetry?.forwarded(stream, this.reporter, raw, headers, route);
  }

  record(
    cluster: ClusterState | null,
    endpoint: EndpointState | null,
    status: number,
    flags: number,
    startMs: number,
    requestBytes: number,
    responseBytes: number,
    protocol = 0,
    grpcStatus = -1,
    peer: PeerIdentity | null = null,
    stream: Downstream | null = null,
  ): void {
    this.stats.rqTotal++;
    const durationMs = performance.now() - startMs;
    this.metrics.record(
      this.reporter,
      cluster,
      endpoint,
      status,
      flags,
      durationMs,
      requestBytes,
      responseBytes,
      protocol,
      grpcStatus,
      peer,
    );
    const t = this.telemetry;
    if (t !== null && stream !== null) {
      try {
        t.end(
          this.reporter,
          stream,
          cluster,
          endpoint,
          status,
          flags,
          durationMs,
          requestBytes,
          responseBytes,
          grpcStatus,
        );
      } catch (err) {
        // Telemetry never fails a request.
        this.log.warn(`telemetry: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  debugError(err: Error): void {
    if (this.log.isDebugEnabled()) this.log.debug(`upstream error: ${err.message}`);
  }
}
