/**
 * The proxy's TCP side: plain TCP to a cluster (`tcp` listeners), TLS passthrough
 * (`tls` listeners, SNI peeked without terminating TLS), the listener's `l4Routes` picking
 * the cluster per connection by SNI and destination address (l4-router.ts), protocol sniffing (`auto` listeners:
 * HTTP goes to the HTTP path, the rest to the listener's cluster) and passthrough to an
 * original destination (sidecar capture, Istio's PassthroughCluster / InboundPassthroughCluster).
 * Circuit breaking: `connectionPool.maxConnections` bounds a cluster's concurrent upstream
 * connections; overflow closes the downstream connection (flag UO). Outlier detection: connect
 * failures count as gateway errors and a successful connect resets the counts (hooks()).
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'winston';
import type { Listener } from '../../tables/index.js';
import { Flag } from '../flags.js';
import { admitTcp } from '../http/inbound-security.js';
import type { ListenerBindOptions } from '../http/listeners.js';
import { capturedOf } from '../sidecar/captured.js';
import type { Snapshot } from '../snapshot.js';
import type { Reporter } from '../telemetry/istio-metrics.js';
import { peerOf } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';
import { L4Router } from './l4-router.js';
import {
  BLACKHOLE,
  INBOUND_PASSTHROUGH_V4,
  INBOUND_PASSTHROUGH_V6,
  PASSTHROUGH,
  TcpMetrics,
  type TcpSeries,
} from './metrics.js';
import { type Destination, type SessionHooks, TcpSession } from './session.js';
import { MAX_CLIENT_HELLO, parseSni } from './sni.js';
import { classifyProtocol, peek, Sniffed, type SniffResult } from './sniff.js';

/**
 * Hands a socket to the HTTP server of a listener (`h2`: it starts with the HTTP/2 preface);
 * false when that listener has no server for it (the connection then goes the TCP way).
 */
export interface HttpAcceptor {
  acceptHttp(listener: string, socket: Socket, h2: boolean): boolean;
}

export interface TcpOptions {
  /** Protocol sniffing gives up after this long and treats the connection as TCP (default 100 ms). */
  sniffTimeoutMs?: number;
  /** TCP idle timeout (Istio's default 1 h) unless the cluster sets connectionPool.idleTimeoutMs. */
  idleTimeoutMs?: number;
}

/** Source address of inbound passthrough connections (Istio's InboundPassthroughBindIpv4/6). */
export const INBOUND_PASSTHROUGH_BIND_V4 = '127.0.0.6';
export const INBOUND_PASSTHROUGH_BIND_V6 = '::6';

/**
 * Gives a socket accepted for TCP (`allowHalfOpen`) to an HTTP server, which expects a
 * client's FIN to close the connection; restores it when the server declines.
 */
export function acceptAsHttp(http: HttpAcceptor, listener: string, socket: Socket, h2: boolean): boolean {
  socket.allowHalfOpen = false;
  if (http.acceptHttp(listener, socket, h2)) return true;
  socket.allowHalfOpen = true;
  return false;
}

const DEFAULT_IDLE_MS = 3_600_000;
const DEFAULT_CONNECT_MS = 10_000;

/** Per-cluster TCP accounting (the HTTP slots of ClusterState count requests, not connections). */
class TcpClusterCounters {
  active = 0;
  total = 0;
  overflow = 0;
  connectFail = 0;
}

interface Bound {
  spec: Listener;
  bindKey: string;
  server: net.Server;
  port: number;
}

export class TcpProxy {
  readonly metrics = new TcpMetrics();
  /** TCP-side listeners this build cannot serve, with the reason (for /config_dump). */
  readonly unsupported = new Map<string, string>();
  private readonly sessions = new Set<TcpSession>();
  private readonly counters = new WeakMap<ClusterState, TcpClusterCounters>();
  private readonly routers = new WeakMap<Listener, L4Router>();
  private readonly bound = new Map<string, Bound>();
  private readonly sniffTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly debugFn: (msg: string) => void;
  private closing = false;

  constructor(
    private readonly bind: ListenerBindOptions & { captureOnly?: boolean },
    private readonly log: Logger,
    private readonly current: () => Snapshot,
    private readonly http: HttpAcceptor,
    opts: TcpOptions = {},
  ) {
    this.sniffTimeoutMs = opts.sniffTimeoutMs ?? 100;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    this.debugFn = (msg) => {
      if (this.log.isDebugEnabled()) this.log.debug(`tcp: ${msg}`);
    };
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /**
   * Serves one accepted connection of a `tcp`, `tls` or `auto` listener. With `l4Routes`,
   * the cluster is chosen per connection by destination address and (tls) SNI; none matching
   * and no listener `cluster` closes the connection (BlackHoleCluster). A PASSTHROUGH cluster
   * (PassthroughCluster) goes to the original destination (`fallback`; closed without one).
   */
  serve(
    down: Socket,
    spec: Listener,
    fallback: ((down: Socket, pending: Buffer | null) => void) | null,
  ): void {
    const reporter: Reporter = spec.direction === 'inbound' ? 'destination' : 'source';
    const router = spec.l4Routes?.length ? this.routerOf(spec) : null;
    const other = (pending: Buffer | null, sni: string) => {
      if (reporter === 'destination' && !admitTcp(this.current(), down, spec.port)) {
        down.destroy(); // AuthorizationPolicy (http/inbound-security.ts)
        return;
      }
      const name =
        router === null
          ? (spec.cluster ?? null)
          : router.pick(router.usesIp ? destinationIp(down) : null, sni);
      const cluster = name !== null ? (this.current().clusters.get(name) ?? null) : null;
      if (cluster !== null && cluster.def.lbPolicy !== 'PASSTHROUGH')
        this.toCluster(down, cluster, reporter, pending);
      else if (fallback !== null && (router === null || cluster !== null)) fallback(down, pending);
      else this.blackhole(down, reporter);
    };
    if (spec.protocol === 'tcp') {
      other(null, '');
    } else if (spec.protocol === 'tls') {
      peek(down, parseSniResult, this.sniffTimeoutMs * 10, MAX_CLIENT_HELLO, (sni, pending) => {
        if (this.log.isDebugEnabled()) this.log.debug(`tcp: ${spec.name}: TLS SNI ${sni || '(none)'}`);
        other(pending, sni ?? '');
      });
    } else {
      peek(down, classifyProtocol, this.sniffTimeoutMs, 64, (p, pending) => {
        if (pending === null && isHttp(p) && acceptAsHttp(this.http, spec.name, down, p === Sniffed.Http2))
          return;
        other(pending, '');
      });
    }
  }

  /** Proxies `down` to an endpoint of `cluster` (balancer, maxConnections, connect timeout). */
  toCluster(down: Socket, cluster: ClusterState, reporter: Reporter, pending: Buffer | null): void {
    const counters = this.countersOf(cluster);
    const cp = cluster.def.connectionPool;
    const endpoint = cluster.pick();
    const peer = peerOf(down);
    const series = (flags: number) =>
      this.metrics.forCluster(reporter, cluster, endpoint ?? null, flags, peer);
    if (endpoint === undefined) {
      cluster.stats.rqNoHealthy++;
      this.reject(down, series(Flag.UH));
      return;
    }
    if (cp?.maxConnections !== undefined && counters.active >= cp.maxConnections) {
      counters.overflow++;
      this.reject(down, series(Flag.UO));
      return;
    }
    counters.active++;
    counters.total++;
    endpoint.active++;
    endpoint.total++;
    const session = new TcpSession(down, this.hooks(series, counters, endpoint, cluster));
    this.sessions.add(session);
    const host = endpoint.address;
    session.connect(
      endpoint.transport
        ? { host, port: endpoint.port, tls: endpoint.transport }
        : { host, port: endpoint.port },
      {
        connectTimeoutMs: cluster.def.connectTimeoutMs ?? DEFAULT_CONNECT_MS,
        idleTimeoutMs: cp?.idleTimeoutMs ?? this.idleTimeoutMs,
      },
      pending,
    );
  }

  /**
   * Passthrough to the connection's original destination. Inbound connections go to the app
   * from 127.0.0.6 (::6), which the capture rules return instead of redirecting again.
   */
  passthrough(
    down: Socket,
    dst: { address: string; port: number; family: 4 | 6 },
    inbound: boolean,
    pending: Buffer | null,
  ): void {
    const reporter: Reporter = inbound ? 'destination' : 'source';
    const name = inbound ? (dst.family === 6 ? INBOUND_PASSTHROUGH_V6 : INBOUND_PASSTHROUGH_V4) : PASSTHROUGH;
    const peer = peerOf(down);
    const series = (flags: number) => this.metrics.forPassthrough(reporter, name, flags, peer);
    const target: Destination = { host: dst.address, port: dst.port };
    if (inbound)
      target.localAddress = dst.family === 6 ? INBOUND_PASSTHROUGH_BIND_V6 : INBOUND_PASSTHROUGH_BIND_V4;
    const session = new TcpSession(down, this.hooks(series, null, null, null));
    this.sessions.add(session);
    session.connect(
      target,
      { connectTimeoutMs: DEFAULT_CONNECT_MS, idleTimeoutMs: this.idleTimeoutMs },
      pending,
    );
  }

  /** Closes a connection nobody serves (Istio's BlackHoleCluster), counting it. */
  blackhole(down: Socket, reporter: Reporter): void {
    this.reject(down, this.metrics.forPassthrough(reporter, BLACKHOLE, 0));
  }

  /** Binds the servers of `tcp` and `tls` listeners (none in capture-only mode). */
  async sync(listeners: readonly Listener[]): Promise<void> {
    this.unsupported.clear();
    const wanted = new Map<string, Listener>();
    if (!this.bind.captureOnly) {
      // `auto` listeners are bound by the HTTP side (HTTP/1.1 + h2c sniffing, http2/server.ts);
      // full sniffing including plain TCP happens on the capture path (sidecar/).
      for (const l of listeners) if (l.protocol === 'tcp' || l.protocol === 'tls') wanted.set(l.name, l);
    }
    for (const [name, b] of this.bound) {
      const next = wanted.get(name);
      if (next && this.bindKey(next) === b.bindKey) {
        b.spec = next;
        wanted.delete(name);
      } else {
        this.bound.delete(name);
        b.server.close();
      }
    }
    for (const spec of wanted.values()) await this.open(spec);
  }

  port(name: string): number | undefined {
    return this.bound.get(name)?.port;
  }

  /** Stops accepting; open connections get `drainMs` to finish, then are closed. */
  async close(drainMs: number): Promise<void> {
    this.closing = true;
    for (const b of this.bound.values()) b.server.close();
    this.bound.clear();
    const deadline = Date.now() + drainMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of this.sessions) s.destroy();
  }

  private async open(spec: Listener): Promise<void> {
    const bindKey = this.bindKey(spec);
    const sep = bindKey.lastIndexOf(':');
    const host = bindKey.slice(0, sep);
    const entry: Bound = { spec, bindKey, server: null as unknown as net.Server, port: 0 };
    entry.server = net.createServer(
      { allowHalfOpen: true, noDelay: true, pauseOnConnect: true },
      (socket) => {
        if (this.closing) socket.destroy();
        else this.serve(socket, entry.spec, null);
      },
    );
    entry.server.on('error', (err) => this.log.error(`listener ${spec.name}: ${err.message}`));
    entry.port = await new Promise<number>((resolve, reject) => {
      entry.server.once('error', reject);
      entry.server.listen(Number(bindKey.slice(sep + 1)), host, () => {
        entry.server.off('error', reject);
        resolve((entry.server.address() as AddressInfo).port);
      });
    });
    this.bound.set(spec.name, entry);
    this.log.info(
      `listener ${spec.name} (${spec.direction} ${spec.protocol}, logical port ${spec.port}) on ${host}:${entry.port}`,
    );
  }

  private bindKey(l: Listener): string {
    const port = this.bind.ports?.[l.name] ?? this.bind.ports?.[String(l.port)] ?? l.port;
    return `${this.bind.address ?? l.address ?? '0.0.0.0'}:${port}`;
  }

  private reject(down: Socket, series: TcpSeries): void {
    down.on('error', noop);
    series.failed(down);
    down.destroy();
  }

  /** The compiled l4Routes of a listener object (one per config version), built on first use. */
  private routerOf(spec: Listener): L4Router {
    let r = this.routers.get(spec);
    if (r === undefined) {
      r = new L4Router(spec);
      this.routers.set(spec, r);
    }
    return r;
  }

  private countersOf(cluster: ClusterState): TcpClusterCounters {
    let c = this.counters.get(cluster);
    if (c === undefined) {
      c = new TcpClusterCounters();
      this.counters.set(cluster, c);
    }
    return c;
  }

  private hooks(
    series: (flags: number) => TcpSeries,
    counters: TcpClusterCounters | null,
    endpoint: EndpointState | null,
    cluster: ClusterState | null,
  ): SessionHooks {
    return {
      // Outlier detection sees every connect attempt to a cluster endpoint, as Envoy's TCP
      // proxy reports it: established = LocalOriginConnectSuccessFinal (200: resets both
      // consecutive counts); refused / TLS refused = LocalOriginConnectFailed (503). A connect
      // timeout is Envoy's LocalOriginTimeout (504); the session does not say which UF it was,
      // so it is reported as 503 too, which counts the same: in consecutive5xxErrors and
      // consecutiveGatewayErrors (Istio does not split local-origin errors). A client leaving
      // before the connect (DC) reports nothing.
      series:
        cluster === null
          ? series
          : (flags) => {
              if (flags === 0) cluster.reportStatus(endpoint!, 200);
              return series(flags);
            },
      debug: this.log.isDebugEnabled() ? this.debugFn : null,
      done: (s) => {
        this.sessions.delete(s);
        if (counters !== null) counters.active--;
        if (endpoint !== null) endpoint.active--;
        if (cluster !== null && s.connectFailed) {
          cluster.stats.cxConnectFail++;
          counters!.connectFail++;
          cluster.reportFailure(endpoint!, false);
        }
      },
    };
  }
}

function isHttp(p: SniffResult | undefined): boolean {
  return p === Sniffed.Http1 || p === Sniffed.Http2;
}

/** The address the client dialled: the captured original destination, else the listener's. */
function destinationIp(down: Socket): string | null {
  return capturedOf(down)?.address ?? down.localAddress ?? null;
}

function parseSniResult(buf: Buffer): string | null | undefined {
  const r = parseSni(buf);
  // `null` (no SNI / not TLS) is a decision too; peek's undefined means "need more".
  return r === null ? '' : r;
}

function noop(): void {}
