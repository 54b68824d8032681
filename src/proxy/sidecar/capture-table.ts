/**
 * How a capture listener (15001 outbound, 15006 inbound) serves a connection, by its original
 * destination: a listener of the config for that address:port or port (tcp, tls, http, auto),
 * else the config's virtual listener for the capture port when a route config serves that
 * port, else passthrough to the original destination (Istio's PassthroughCluster /
 * InboundPassthroughCluster with outboundTrafficPolicy ALLOW_ANY). Built once per config
 * version; a lookup is one or two Map gets.
 */
import type { Listener } from '../../tables/index.js';
import type { Snapshot } from '../snapshot.js';

export const Via = {
  /** TCP-proxy to the original destination. */
  Passthrough: 0,
  /** HTTP listener: its server (HTTP/1.1, or HTTP/2 by preface). */
  Http: 1,
  /** tcp / tls / auto listener: tcp/TcpProxy.serve (auto sniffs; no cluster = passthrough). */
  Tcp: 2,
  /** The virtual listener of an auto port: sniff, HTTP to it, anything else passthrough. */
  SniffVirtual: 3,
} as const;
export type ViaKind = (typeof Via)[keyof typeof Via];

export interface CaptureRoute {
  readonly via: ViaKind;
  readonly listener: Listener | null;
}

const PASSTHROUGH: CaptureRoute = { via: Via.Passthrough, listener: null };

function isHttpProtocol(p: Listener['protocol']): boolean {
  return p === 'http' || p === 'http2' || p === 'grpc';
}

export class CaptureTable {
  readonly snapshot: Snapshot;
  /** The virtual listener (port == capture port), when the config has one. */
  readonly virtual: Listener | null;
  private readonly byAddress = new Map<string, CaptureRoute>();
  private readonly byPort = new Map<number, CaptureRoute>();
  private readonly virtualRoute: CaptureRoute | null;

  constructor(snapshot: Snapshot, direction: 'outbound' | 'inbound', capturePort: number) {
    this.snapshot = snapshot;
    let virtual: Listener | null = null;
    for (const l of snapshot.tables.listeners) {
      if (l.direction !== direction) continue;
      if (l.port === capturePort) {
        virtual ??= l;
        continue;
      }
      const route: CaptureRoute = { via: isHttpProtocol(l.protocol) ? Via.Http : Via.Tcp, listener: l };
      if (l.address !== undefined && l.address !== '0.0.0.0' && l.address !== '::')
        this.byAddress.set(`${l.address}:${l.port}`, route);
      else this.byPort.set(l.port, route);
    }
    this.virtual = virtual;
    this.virtualRoute =
      virtual === null || !(isHttpProtocol(virtual.protocol) || virtual.protocol === 'auto')
        ? null
        : { via: virtual.protocol === 'auto' ? Via.SniffVirtual : Via.Http, listener: virtual };
  }

  route(address: string, port: number): CaptureRoute {
    if (this.byAddress.size > 0) {
      const r = this.byAddress.get(`${address}:${port}`);
      if (r !== undefined) return r;
    }
    const r = this.byPort.get(port);
    if (r !== undefined) return r;
    const v = this.virtualRoute;
    if (v !== null) {
      const l = v.listener!;
      if (l.routeByPort ? this.snapshot.routeConfigByPort.has(port) : l.routeConfig !== undefined) return v;
    }
    return PASSTHROUGH;
  }
}
