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
import { type PeerIdentity, peerOf } from '../tls/peer.js';
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
  readonly up?: Socket | null;
}

/** When and to where a connection was opened (upstream fields empty when it never was). */
export class OpenConnection {
  constructor(
    readonly startEpochMs: number,
    readonly upstreamAddress: string,
    readonly upstreamPort: number,
    readonly localAddress: string,
    readonly localPort: number,
  ) {}
}
const NO_INFO = new OpenConnection(0, '', 0, '', 0);

/** Told about every TCP connection that ends (the access log, telemetry/request-telemetry.ts). */
export interface TcpCloseHook {
  tcpClosed(down: Socket, info: OpenConnection, cluster: string, flags: number, sni: string): void;
}

export class TcpSeries {
  opened = 0;
  closed = 0;
  /** Bytes of connections already closed (open ones are added at render time). */
  sent = 0;
  received = 0;
  /** Open connections -> when they opened and to where (for the access log). */
  readonly live = new Map<LiveConnection, OpenConnection>();
  constructor(
    readonly labels: string,
    /** Istio cluster name (access log upstream_cluster). */
    readonly cluster: string,
    readonly flags: number,
    readonly hook: TcpCloseHook | null,
  ) {}

  open(c: LiveConnection): void {
    this.opened++;
    // Addresses are read now: a closed socket no longer reports them.
    const up = c.up ?? null;
    this.live.set(
      c,
      this.hook === null
        ? NO_INFO
        : new OpenConnection(
            Date.now(),
            up?.remoteAddress ?? '',
            up?.remotePort ?? 0,
            up?.localAddress ?? '',
            up?.localPort ?? 0,
          ),
    );
  }

  /** Moves an open connection's bytes into the closed totals. */
  close(c: LiveConnection): void {
    const info = this.live.get(c);
    if (info === undefined) return;
    this.live.delete(c);
    this.closed++;
    this.sent += c.down.bytesWritten;
    this.received += c.down.bytesRead;
    if (this.hook !== null) this.notify(c.down, info);
  }

  /** A connection that never got an upstream: opened and closed at once (with its flags). */
  failed(down: Socket): void {
    this.opened++;
    this.closed++;
    this.received += down.bytesRead;
    if (this.hook !== null) this.notify(down, new OpenConnection(Date.now(), '', 0, '', 0));
  }

  private notify(down: Socket, info: OpenConnection): void {
    try {
      this.hook!.tcpClosed(down, info, this.cluster, this.flags, peerOf(down)?.sni ?? '');
    } catch {
      // Logging never breaks a connection.
    }
  }
}

class TcpBase {
  readonly byFlags = new Map<number, TcpSeries>();
  /** Destination side: variants per mTLS peer principal. */
  peers: Map<string, TcpBase> | null = null;
  constructor(
    readonly gen: number,
    readonly prefix: string,
    readonly cluster: string,
    readonly hook: TcpCloseHook | null,
  ) {}
}

const U = 'unknown';

export class TcpMetrics {
  private gen = 0;
  private node: Workload = {};
  private readonly bases = new Set<TcpBase>();
  private readonly slots = new WeakMap<object, TcpBase>();
  private readonly named = new Map<string, TcpBase>();
  /** Access log of closed connections (set by the proxy when one is configured). */
  closeHook: TcpCloseHook | null = null;

  /** Changes the close hook for connections opened from now on (access log turned on/off). */
  setCloseHook(hook: TcpCloseHook | null): void {
    if (hook === this.closeHook) return;
    this.closeHook = hook;
    this.gen++;
    this.named.clear();
  }

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
      base = this.newBase(reporter, endpoint?.workload ?? {}, serviceOf(cluster), cluster.name);
      this.slots.set(holder, base);
    }
    if (peer !== null)
      base = this.withPeer(base, reporter, endpoint?.workload ?? {}, serviceOf(cluster), peer, cluster.name);
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
      base = this.newBase(reporter, {}, svc, name);
      this.named.set(key, base);
    }
    if (peer !== null) base = this.withPeer(base, reporter, {}, svc, peer, name);
    return seriesOf(base, flags);
  }

  private withPeer(
    base: TcpBase,
    reporter: Reporter,
    workload: Workload,
    svc: { host: string; name: string; namespace: string },
    peer: PeerIdentity,
    cluster: string,
  ): TcpBase {
    base.peers ??= new Map();
    let b = base.peers.get(peer.principal);
    if (b === undefined) {
      b = this.newBase(reporter, workload, svc, cluster, peer);
      base.peers.set(peer.principal, b);
    }
    return b;
  }

  private newBase(
    reporter: Reporter,
    peer: Workload,
    svc: { host: string; name: string; namespace: string },
    cluster: string,
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
    const base = new TcpBase(
      this.gen,
      labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(','),
      cluster,
      this.closeHook,
    );
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
      for (const c of s.live.keys()) n += c.down.bytesWritten;
      return n;
    });
    metric('istio_tcp_received_bytes_total', (s) => {
      let n = s.received;
      for (const c of s.live.keys()) n += c.down.bytesRead;
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
    s = new TcpSeries(
      `${base.prefix},response_flags="${flagsString(flags)}"`,
      base.cluster,
      flags,
      base.hook,
    );
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
