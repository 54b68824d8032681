/**
 * A capture listener: 15001 (outbound) or 15006 (inbound), where the istio-init rules
 * REDIRECT the pod's TCP traffic. Each connection's original destination (SO_ORIGINAL_DST)
 * picks how it is served (capture-table.ts): an HTTP listener's server, TCP/TLS to a cluster,
 * or passthrough to the original destination. Ports the config knows as `auto`, and HTTP
 * ports (to tell HTTP/1 from the HTTP/2 preface), are sniffed first.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Logger } from 'winston';
import { getOriginalDst, type OriginalDst } from '../../iptables/original-dst.js';
import { inboundModeFor } from '../../tables/index.js';
import type { Snapshot } from '../snapshot.js';
import {
  acceptAsHttp,
  classifyProtocol,
  type HttpAcceptor,
  peek,
  Sniffed,
  type TcpProxy,
} from '../tcp/index.js';
import type { InboundTls } from '../tls/inbound.js';
import { type CaptureRoute, CaptureTable, Via } from './capture-table.js';
import { setCaptured } from './captured.js';

export interface CaptureDeps extends HttpAcceptor {
  snapshot(): Snapshot;
  tcp: TcpProxy;
  log: Logger;
  /** Reads the original destination; null when the connection was not redirected. */
  originalDst?: (socket: Socket) => OriginalDst | null;
  /** Sniffing gives up after this long (server-first protocols) and goes TCP; default 100 ms. */
  sniffTimeoutMs?: number;
  /** Inbound mTLS termination (sidecars with a workload identity); absent = plaintext only. */
  inboundTls?: InboundTls | null;
}

/** SO_ORIGINAL_DST through the native addon; null when the socket was not redirected. */
export function readOriginalDst(socket: Socket): OriginalDst | null {
  try {
    return getOriginalDst(socket);
  } catch {
    return null;
  }
}

export class CaptureListener {
  readonly direction: 'outbound' | 'inbound';
  /** Logical port (15001/15006): the config's virtual listener for it is matched by this. */
  readonly capturePort: number;
  private readonly deps: CaptureDeps;
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<Socket>();
  private table: CaptureTable | null = null;
  private readonly originalDst: (socket: Socket) => OriginalDst | null;
  private readonly sniffTimeoutMs: number;
  readonly ports: number[] = [];

  constructor(direction: 'outbound' | 'inbound', capturePort: number, deps: CaptureDeps) {
    this.direction = direction;
    this.capturePort = capturePort;
    this.deps = deps;
    this.originalDst = deps.originalDst ?? readOriginalDst;
    this.sniffTimeoutMs = deps.sniffTimeoutMs ?? 100;
  }

  /** Binds `port` on each host; a host whose family is missing (no IPv6) is skipped. */
  async listen(port: number, hosts: readonly string[]): Promise<number> {
    let bound = port;
    for (const host of hosts) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) =>
        this.onConnection(s),
      );
      try {
        bound = await new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: bound, host, ipv6Only: host.includes(':') }, () => {
            server.off('error', reject);
            resolve((server.address() as AddressInfo).port);
          });
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (host.includes(':') && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
          this.deps.log.debug(`capture ${this.direction}: no IPv6 (${code}), listening on IPv4 only`);
          continue;
        }
        throw err;
      }
      server.on('error', (e) => this.deps.log.error(`capture ${this.direction}: ${e.message}`));
      this.servers.push(server);
      this.ports.push(bound);
      this.deps.log.info(
        `capture listener ${this.direction} on ${host.includes(':') ? `[${host}]` : host}:${bound}`,
      );
    }
    return bound;
  }

  get bound(): boolean {
    return this.servers.length > 0 && this.servers.every((s) => s.listening);
  }

  /** Stops accepting; connections already handed on are drained by their owners. */
  close(): void {
    for (const s of this.servers) s.close();
    for (const s of this.sockets) s.destroy();
  }

  private tableFor(snap: Snapshot): CaptureTable {
    let t = this.table;
    if (t === null || t.snapshot !== snap) {
      t = new CaptureTable(snap, this.direction, this.capturePort);
      this.table = t;
    }
    return t;
  }

  private onConnection(socket: Socket): void {
    socket.on('error', noop);
    const dst = this.originalDst(socket);
    const tcp = this.deps.tcp;
    const inbound = this.direction === 'inbound';
    const table = this.tableFor(this.deps.snapshot());
    if (dst === null) {
      // Not redirected: someone dialled the capture port itself. Outbound, the config's
      // virtual listener may be an explicit forward proxy (HTTP_PROXY=...:15001).
      const v = table.virtual;
      if (!inbound && v?.explicitProxy === true && acceptAsHttp(this.deps, v.name, socket, false)) return;
      tcp.blackhole(socket, inbound ? 'destination' : 'source');
      return;
    }
    setCaptured(socket, dst);
    const route = table.route(dst.address, dst.port);
    const itls = inbound ? this.deps.inboundTls : undefined;
    if (itls) {
      const mode = inboundModeFor(table.snapshot.tables.inboundMtls, dst.port);
      if (mode !== 'DISABLE') {
        itls.handle(socket, mode, {
          plaintext: (s, pending) => this.serve(s, dst, route, pending),
          secured: (t) => {
            setCaptured(t, dst);
            this.serve(t, dst, route, null);
          },
        });
        return;
      }
    }
    this.serve(socket, dst, route, null);
  }

  /** Serves a captured connection (plaintext, or decrypted by inbound mTLS) by its route. */
  private serve(socket: Socket, dst: OriginalDst, route: CaptureRoute, pending: Buffer | null): void {
    const tcp = this.deps.tcp;
    const inbound = this.direction === 'inbound';
    const passthrough = (down: Socket, rest: Buffer | null) => tcp.passthrough(down, dst, inbound, rest);
    if (route.via === Via.Passthrough || pending !== null) {
      passthrough(socket, pending);
      return;
    }
    const listener = route.listener!;
    if (route.via === Via.Tcp) {
      tcp.serve(socket, listener, passthrough);
      return;
    }
    // HTTP listener or virtual auto listener: the first bytes pick HTTP/1, HTTP/2 or TCP.
    this.sockets.add(socket);
    peek(socket, classifyProtocol, this.sniffTimeoutMs, 64, (p, rest) => {
      this.sockets.delete(socket);
      if (socket.destroyed) return;
      const http = p === Sniffed.Http1 || p === Sniffed.Http2 || route.via === Via.Http;
      if (rest === null && http && acceptAsHttp(this.deps, listener.name, socket, p === Sniffed.Http2))
        return;
      passthrough(socket, rest);
    });
  }
}

function noop(): void {}
