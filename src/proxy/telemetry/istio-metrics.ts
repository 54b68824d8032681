/**
 * Istio's standard HTTP metrics with Istio's names and labels, rendered in Prometheus text.
 * Hot path: the label prefix for (reporter, source, destination workload, service) is built
 * once per endpoint and cached on the endpoint; the series for (code, flags) is one Map
 * lookup under it. No strings are built per request.
 */
import type { Workload } from '../../tables/index.js';
import { parseClusterName } from '../../tables/index.js';
import { flagsString } from '../flags.js';
import type { PeerIdentity } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';

/** Envoy's default histogram buckets, which Istio's metrics use. */
export const BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];
const NB = BUCKETS.length;

export type Reporter = 'source' | 'destination';

class Histogram {
  readonly counts = new Float64Array(NB + 1);
  sum = 0;
  observe(v: number): void {
    let i = 0;
    while (i < NB && v > BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
  }
}

class Series {
  requests = 0;
  readonly duration = new Histogram();
  readonly requestBytes = new Histogram();
  readonly responseBytes = new Histogram();
  constructor(readonly labels: string) {}
}

/** Label prefix shared by all series of one (reporter, peer, service) combination. */
class LabelBase {
  readonly series = new Map<number, Series>();
  /** Destination side: variants of this base per mTLS peer principal (see withPeer). */
  peers: Map<string, LabelBase> | null = null;
  constructor(
    readonly gen: number,
    readonly prefix: string,
    /** `connection_security_policy="..."`, which follows the per-series protocol labels. */
    readonly security: string,
  ) {}
}

/** request_protocol values, indexed by the `protocol` argument of record(). */
export const Protocol = { http: 0, grpc: 1 } as const;
const PROTOCOL_NAMES = ['http', 'grpc'];

const U = 'unknown';

export class IstioMetrics {
  private gen = 0;
  private node: Workload = {};
  private readonly bases = new Set<LabelBase>();
  private noRoute: Record<Reporter, LabelBase | undefined> = { source: undefined, destination: undefined };

  /** The proxy's own workload changed (new config): label caches are rebuilt lazily. */
  setNode(node: Workload | undefined): void {
    const next = node ?? {};
    if (JSON.stringify(next) === JSON.stringify(this.node)) return;
    this.node = next;
    this.gen++;
    this.noRoute = { source: undefined, destination: undefined };
  }

  record(
    reporter: Reporter,
    cluster: ClusterState | null,
    endpoint: EndpointState | null,
    code: number,
    flags: number,
    durationMs: number,
    requestBytes: number,
    responseBytes: number,
    protocol = 0,
    grpcStatus = -1,
    peer: PeerIdentity | null = null,
  ): void {
    let base = this.baseFor(reporter, cluster, endpoint);
    if (peer !== null) base = this.withPeer(base, reporter, cluster, endpoint, peer);
    // code < 1000, flags < 8192: one number per (protocol, grpc status, code, flags).
    const key = ((grpcStatus + 1) * 2 + protocol) * 8_192_000 + code * 8192 + flags;
    let s = base.series.get(key);
    if (s === undefined) {
      const grpc = grpcStatus >= 0 ? String(grpcStatus) : '';
      s = new Series(
        `${base.prefix},request_protocol="${PROTOCOL_NAMES[protocol]}",grpc_response_status="${grpc}",` +
          `${base.security},response_code="${code}",response_flags="${flagsString(flags)}"`,
      );
      base.series.set(key, s);
    }
    s.requests++;
    s.duration.observe(durationMs);
    s.requestBytes.observe(requestBytes);
    s.responseBytes.observe(responseBytes);
  }

  private baseFor(
    reporter: Reporter,
    cluster: ClusterState | null,
    endpoint: EndpointState | null,
  ): LabelBase {
    const holder: { metricsSlot: unknown } | null = endpoint ?? cluster;
    if (holder === null) {
      let b = this.noRoute[reporter];
      if (b === undefined) {
        b = this.newBase(reporter, null, null);
        this.noRoute[reporter] = b;
      }
      return b;
    }
    const cached = holder.metricsSlot as LabelBase | undefined;
    if (cached !== undefined && cached.gen === this.gen) return cached;
    const b = this.newBase(reporter, cluster, endpoint);
    holder.metricsSlot = b;
    return b;
  }

  /** The base of `base`'s labels for requests from an mTLS peer (one Map lookup). */
  private withPeer(
    base: LabelBase,
    reporter: Reporter,
    cluster: ClusterState | null,
    endpoint: EndpointState | null,
    peer: PeerIdentity,
  ): LabelBase {
    base.peers ??= new Map();
    let b = base.peers.get(peer.principal);
    if (b === undefined) {
      b = this.newBase(reporter, cluster, endpoint, peer);
      base.peers.set(peer.principal, b);
    }
    return b;
  }

  private newBase(
    reporter: Reporter,
    cluster: ClusterState | null,
    endpoint: EndpointState | null,
    mtlsPeer: PeerIdentity | null = null,
  ): LabelBase {
    const peer = endpoint?.workload ?? {};
    const self = this.node;
    const labels = peerLabels(reporter, self, peer, serviceOf(cluster), mtlsPeer);
    const prefix = labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
    // The destination side knows (mutual_tls or plaintext); Istio's source side reports unknown.
    const policy = reporter === 'destination' ? (mtlsPeer !== null ? 'mutual_tls' : 'none') : U;
    const security = `connection_security_policy="${policy}"`;
    const base = new LabelBase(this.gen, prefix, security);
    this.bases.add(base);
    return base;
  }

  /** Prometheus text exposition of the four HTTP metrics. */
  render(): string {
    const live = [...this.bases].filter((b) => b.gen === this.gen || b.series.size > 0);
    const out: string[] = [];
    out.push('# TYPE istio_requests_total counter');
    for (const b of live)
      for (const s of b.series.values()) out.push(`istio_requests_total{${s.labels}} ${s.requests}`);
    renderHistogram(out, 'istio_request_duration_milliseconds', live, (s) => s.duration);
    renderHistogram(out, 'istio_request_bytes', live, (s) => s.requestBytes);
    renderHistogram(out, 'istio_response_bytes', live, (s) => s.responseBytes);
    return `${out.join('\n')}\n`;
  }

  /** Total of istio_requests_total (for /stats and tests). */
  totalRequests(): number {
    let n = 0;
    for (const b of this.bases) for (const s of b.series.values()) n += s.requests;
    return n;
  }
}

function renderHistogram(
  out: string[],
  name: string,
  bases: LabelBase[],
  pick: (s: Series) => Histogram,
): void {
  out.push(`# TYPE ${name} histogram`);
  for (const b of bases) {
    for (const s of b.series.values()) {
      const h = pick(s);
      let cum = 0;
      for (let i = 0; i < NB; i++) {
        cum += h.counts[i]!;
        out.push(`${name}_bucket{${s.labels},le="${BUCKETS[i]}"} ${cum}`);
      }
      cum += h.counts[NB]!;
      out.push(`${name}_bucket{${s.labels},le="+Inf"} ${cum}`);
      out.push(`${name}_sum{${s.labels}} ${h.sum}`);
      out.push(`${name}_count{${s.labels}} ${cum}`);
    }
  }
}

function serviceOf(cluster: ClusterState | null): { host: string; name: string; namespace: string } {
  const ref = cluster?.def.service;
  if (ref) return { host: ref.host, name: ref.name, namespace: ref.namespace };
  const parsed = cluster ? parseClusterName(cluster.name) : undefined;
  if (parsed?.host) {
    const [name, namespace] = parsed.host.split('.');
    return { host: parsed.host, name: name || U, namespace: namespace || U };
  }
  return { host: U, name: U, namespace: U };
}

/**
 * Istio's source/destination label pairs, shared by the HTTP and TCP metrics. Outbound (source
 * reporter): we are the source, the endpoint is the destination. Inbound, the source's identity is
 * the verified mTLS peer (no metadata exchange).
 */
export function peerLabels(
  reporter: Reporter,
  self: Workload,
  peer: Workload,
  svc: { host: string; name: string; namespace: string },
  mtlsPeer: PeerIdentity | null,
): Array<[string, string]> {
  const src: Workload =
    reporter === 'source' ? self : mtlsPeer !== null ? { principal: mtlsPeer.principal } : {};
  const dst = reporter === 'source' ? peer : self;
  return [
    ['reporter', reporter],
    ['source_workload', src.name ?? U],
    ['source_workload_namespace', src.namespace ?? U],
    ['source_principal', src.principal ?? U],
    ['source_app', src.app ?? U],
    ['source_version', src.version ?? U],
    ['destination_workload', dst.name ?? U],
    ['destination_workload_namespace', dst.namespace ?? U],
    ['destination_principal', dst.principal ?? U],
    ['destination_app', dst.app ?? U],
    ['destination_version', dst.version ?? U],
    ['destination_service', svc.host],
    ['destination_service_name', svc.name],
    ['destination_service_namespace', svc.namespace],
  ];
}

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
