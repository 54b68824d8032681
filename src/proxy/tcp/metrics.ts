/**
 * Istio's TCP metrics (`istio_tcp_connections_opened_total`, `..._closed_total`,
 * `istio_tcp_sent_bytes_total`, `istio_tcp_received_bytes_total`) with Istio's labels.
 * Label prefixes are cached per endpoint/cluster (a WeakMap, so the HTTP metrics' own slot on
 * the endpoint stays theirs) and per passthrough kind; a session holds its series directly.
 * Bytes of open connections are read from the sockets at render time, so long-lived
 * connections show up before they close.
 */
import type { Socket } from 'node:net';
import type { Workload } from '../../tables/index.js';
import { parseClusterName } from '../../tables/index.js';
import { flagsString } from '../flags.js';
import { escapeLabel, peerLabels, type Reporter } from '../telemetry/istio-metrics.js';
import type { PeerIdentity } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';

/** Istio's names for the clusters of traffic no service entry covers. */
export const PASSTHROUGH = 'PassthroughCluster';
export const INBOUND_PASSTHROUGH_V4 = 'InboundPassthroughClusterIpv4';
export const INBOUND_PASSTHROUGH_V6 = 'InboundPassthroughClusterIpv6';
export const BLACKHOLE = 'BlackHoleCluster';

/** What a series reads from an open connection at render time. */
export interface LiveConnection {
  readonly down: Socket;
}

export class TcpSeries {
  opened = 0;
  closed = 0;
  /** Bytes of connections already closed (open ones are added at render time). */
  sent = 0;
  received = 0;
  readonly live = new Set<LiveConnection>();
  constructor(readonly labels: string) {}

  open(c: LiveConnection): void {
    this.opened++;
    this.live.add(c);
  }

  /** Moves an open connection's bytes into the closed totals. */
  close(c: LiveConnection): void {
    if (!this.live.delete(c)) return;
    this.closed++;
    this.sent += c.down.bytesWritten;
    this.received += c.down.bytesRead;
  }

  /** A connection that never got an upstream: opened and closed at once (with its flags). */
  failed(down: Socket): void {
    this.opened++;
    this.closed++;
    this.received += down.bytesRead;
  }
}

class TcpBase {
  readonly byFlags = new Map<number, TcpSeries>();
  /** Destination side: variants per mTLS peer principal. */
  peers: Map<string, TcpBase> | null = null;
  constructor(
    readonly gen: number,
    readonly prefix: string,
  ) {}
}

const U = 'unknown';

export class TcpMetrics {
  private gen = 0;
  private node: Workload = {};
  private readonly bases = new Set<TcpBase>();
  private readonly slots = new WeakMap<object, TcpBase>();
  private readonly named = new Map<string, TcpBase>();

  setNode(node: Workload | undefined): void {
    const next = node ?? {};
    if (JSON.stringify(next) === JSON.stringify(this.node)) return;
    this.node = next;
    this.gen++;
    this.named.clear();
  }

  /** Series of a connection to `endpoint` of `cluster`. */
  forCluster(
    reporter: Reporter,
    cluster: ClusterState,
    endpoint: EndpointState | null,
    flags: number,
    peer: PeerIdentity | null = null,
  ): TcpSeries {
    const holder: object = endpoint ?? cluster;
    let base = this.slots.get(holder);
    if (base === undefined || base.gen !== this.gen) {
      base = this.newBase(reporter, endpoint?.workload ?? {}, serviceOf(cluster));
      this.slots.set(holder, base);
    }
    if (peer !== null)
      base = this.withPeer(base, reporter, endpoint?.workload ?? {}, serviceOf(cluster), peer);
    return seriesOf(base, flags);
  }

  /** Series of a passthrough (or black-holed) connection; `name` is the Istio cluster name. */
  forPassthrough(
    reporter: Reporter,
    name: string,
    flags: number,
    peer: PeerIdentity | null = null,
  ): TcpSeries {
    const key = `${reporter}|${name}`;
    const svc = { host: U, name, namespace: U };
    let base = this.named.get(key);
    if (base === undefined) {
      base = this.newBase(reporter, {}, svc);
      this.named.set(key, base);
    }
    if (peer !== null) base = this.withPeer(base, reporter, {}, svc, peer);
    return seriesOf(base, flags);
  }

  private withPeer(
    base: TcpBase,
    reporter: Reporter,
    workload: Workload,
    svc: { host: string; name: string; namespace: string },
    peer: PeerIdentity,
  ): TcpBase {
    base.peers ??= new Map();
    let b = base.peers.get(peer.principal);
    if (b === undefined) {
      b = this.newBase(reporter, workload, svc, peer);
      base.peers.set(peer.principal, b);
    }
    return b;
  }

  private newBase(
    reporter: Reporter,
    peer: Workload,
    svc: { host: string; name: string; namespace: string },
    mtlsPeer: PeerIdentity | null = null,
  ): TcpBase {
    const self = this.node;
    const labels: Array<[string, string]> = [
      ...peerLabels(reporter, self, peer, svc, mtlsPeer),
      ['request_protocol', 'tcp'],
      [
        'connection_security_policy',
        reporter === 'destination' ? (mtlsPeer !== null ? 'mutual_tls' : 'none') : U,
      ],
    ];
    const base = new TcpBase(this.gen, labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(','));
    this.bases.add(base);
    return base;
  }

  /** Prometheus text of the four TCP metrics. */
  render(): string {
    const all: TcpSeries[] = [];
    for (const b of this.bases) for (const s of b.byFlags.values()) all.push(s);
    const out: string[] = [];
    const metric = (name: string, value: (s: TcpSeries) => number) => {
      out.push(`# TYPE ${name} counter`);
      for (const s of all) out.push(`${name}{${s.labels}} ${value(s)}`);
    };
    metric('istio_tcp_connections_opened_total', (s) => s.opened);
    metric('istio_tcp_connections_closed_total', (s) => s.closed);
    metric('istio_tcp_sent_bytes_total', (s) => {
      let n = s.sent;
      for (const c of s.live) n += c.down.bytesWritten;
      return n;
    });
    metric('istio_tcp_received_bytes_total', (s) => {
      let n = s.received;
      for (const c of s.live) n += c.down.bytesRead;
      return n;
    });
    return `${out.join('\n')}\n`;
  }

  /** Totals over every series (for /stats and tests). */
  totals(): { opened: number; closed: number; active: number } {
    let opened = 0;
    let closed = 0;
    let active = 0;
    for (const b of this.bases)
      for (const s of b.byFlags.values()) {
        opened += s.opened;
        closed += s.closed;
        active += s.live.size;
      }
    return { opened, closed, active };
  }
}

function seriesOf(base: TcpBase, flags: number): TcpSeries {
  let s = base.byFlags.get(flags);
  if (s === undefined) {
    s = new TcpSeries(`${base.prefix},response_flags="${flagsString(flags)}"`);
    base.byFlags.set(flags, s);
  }
  return s;
}

function serviceOf(cluster: ClusterState): { host: string; name: string; namespace: string } {
  const ref = cluster.def.service;
  if (ref) return { host: ref.host, name: ref.name, namespace: ref.namespace };
  const host = parseClusterName(cluster.name)?.host;
  if (host) {
    const [name, namespace] = host.split('.');
    return { host, name: name || U, namespace: namespace || U };
  }
  return { host: U, name: cluster.name, namespace: U };
}
