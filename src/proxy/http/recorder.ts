/**
 * End-of-request accounting for one listener: Istio metrics (with the listener's reporter)
 * and listener counters. One instance per listener, so the per-request call passes only
 * what varies.
 */
import type { Logger } from 'winston';
import type { IstioMetrics, Reporter } from '../telemetry/istio-metrics.js';
import type { PeerIdentity } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';

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
  ) {}

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
  ): void {
    this.stats.rqTotal++;
    this.metrics.record(
      this.reporter,
      cluster,
      endpoint,
      status,
      flags,
      performance.now() - startMs,
      requestBytes,
      responseBytes,
      protocol,
      grpcStatus,
      peer,
    );
  }

  debugError(err: Error): void {
    if (this.log.isDebugEnabled()) this.log.debug(`upstream error: ${err.message}`);
  }
}
