/**
 * Servers for the HTTP listeners of the current config (our own HTTP/1.1 server, see
 * http1/server.ts). A config swap re-points an unchanged listener's server at its new
 * handler (one assignment, no rebind); listeners that move or disappear are closed
 * gracefully (in-flight requests finish, idle keep-alive connections are closed).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'winston';
import type { Listener } from '../../tables/index.js';
import { DEFAULT_LIMITS, Http1Server } from '../http1/server.js';
import { H2ListenerServer } from '../http2/server.js';
import type { Snapshot } from '../snapshot.js';
import type { IstioMetrics } from '../telemetry/istio-metrics.js';
import type { ProxyTelemetry } from '../telemetry/request-telemetry.js';
import { HttpHandler } from './handler.js';
import { RequestRecorder } from './recorder.js';

export interface ListenerBindOptions {
  /** Bind port by listener name or by logical port (e.g. {"15001": 0}); 0 = ephemeral. */
  ports?: Record<string, number>;
  /** Overrides every listener's bind address (tests use 127.0.0.1). */
  address?: string;
  /** Close downstream connections idle this long (default 60 s). */
  idleTimeoutMs?: number;
  /** A request head must arrive within this time (default 10 s; slowloris guard). */
  headersTimeoutMs?: number;
  /**
   * Sidecar mode: no listener binds its own port; the capture listeners (15001/15006, see
   * sidecar/) hand each connection to a listener's server through `accept`.
   */
  captureOnly?: boolean;
}

interface Running {
  spec: Listener;
  bindKey: string;
  server: Http1Server | H2ListenerServer;
  handler: HttpHandler;
  port: number;
}

export class ListenerManager {
  private readonly running = new Map<string, Running>();
  /** Listeners in the config that this build cannot serve yet (e.g. tcp), with the reason. */
  readonly unsupported = new Map<string, string>();

  constructor(
    private readonly opts: ListenerBindOptions,
    private readonly metrics: IstioMetrics,
    private readonly log: Logger,
    private readonly current: () => Snapshot,
    private telemetry: ProxyTelemetry | null = null,
  ) {}

  /** Tracing/access log turned on (the object) or off (null) for running and future listeners. */
  setTelemetry(t: ProxyTelemetry | null): void {
    this.telemetry = t;
    for (const r of this.running.values()) r.handler.recorder.telemetry = t;
  }

  port(name: string): number | undefined {
    return this.running.get(name)?.port;
  }

  handlers(): HttpHandler[] {
    return [...this.running.values()].map((r) => r.handler);
  }

  /** Serves a connection accepted elsewhere (capture); false when no server can take it. */
  accept(name: string, socket: Socket, h2: boolean): boolean {
    const server = this.running.get(name)?.server;
    if (server === undefined) return false;
    if (server instanceof Http1Server) {
      if (h2) return false;
      server.accept(socket);
    } else if (h2) server.acceptH2(socket);
    else server.acceptH1(socket);
    return true;
  }

  /** Brings the running servers in line with `listeners`. Rejects if a new bind fails. */
  async sync(listeners: readonly Listener[]): Promise<void> {
    const wanted = new Map<string, Listener>();
    this.unsupported.clear();
    for (const l of listeners) {
      if (l.protocol === 'http' || isHttp2Listener(l)) wanted.set(l.name, l);
      else this.unsupported.set(l.name, `protocol ${l.protocol} not served yet`);
    }
    const closing: Promise<void>[] = [];
    for (const [name, r] of this.running) {
      const next = wanted.get(name);
      if (next && this.bindKey(next) === r.bindKey && isHttp2Listener(next) === isHttp2Listener(r.spec)) {
        const handler = new HttpHandler(next, r.handler.recorder, this.current);
        r.server.handler = handler.handle;
        r.handler = handler;
        r.spec = next;
        wanted.delete(name);
      } else {
        this.running.delete(name);
        closing.push(r.server.close());
      }
    }
    for (const spec of wanted.values()) await this.open(spec);
    await Promise.all(closing);
  }

  /**
   * Stops accepting and lets in-flight requests finish for up to `drainMs`, then closes
   * whatever connections remain.
   */
  async close(drainMs: number): Promise<void> {
    const servers = [...this.running.values()].map((r) => r.server);
    this.running.clear();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainMs);
    });
    await Promise.race([Promise.all(servers.map((s) => s.close())), deadline]);
    clearTimeout(timer);
    for (const s of servers) s.closeAll();
  }

  private bindKey(l: Listener): string {
    if (this.opts.captureOnly) return 'capture';
    const port = this.opts.ports?.[l.name] ?? this.opts.ports?.[String(l.port)] ?? l.port;
    return `${this.opts.address ?? l.address ?? '0.0.0.0'}:${port}`;
  }

  private async open(spec: Listener): Promise<void> {
    const recorder = new RequestRecorder(
      this.metrics,
      spec.direction === 'inbound' ? 'destination' : 'source',
      this.log,
      this.telemetry,
    );
    const handler = new HttpHandler(spec, recorder, this.current);
    const limits = {
      ...DEFAULT_LIMITS,
      ...(this.opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.opts.idleTimeoutMs } : {}),
      ...(this.opts.headersTimeoutMs !== undefined ? { headersTimeoutMs: this.opts.headersTimeoutMs } : {}),
    };
    const server = isHttp2Listener(spec)
      ? new H2ListenerServer(handler.handle, limits)
      : new Http1Server(handler.handle, limits);
    const bindKey = this.bindKey(spec);
    if (this.opts.captureOnly) {
      this.running.set(spec.name, { spec, bindKey, server, handler, port: 0 });
      return;
    }
    const sep = bindKey.lastIndexOf(':');
    const host = bindKey.slice(0, sep);
    const bound = await server.listen(Number(bindKey.slice(sep + 1)), host);
    this.running.set(spec.name, { spec, bindKey, server, handler, port: bound });
    this.log.info(`listener ${spec.name} (${spec.direction}, logical port ${spec.port}) on ${host}:${bound}`);
  }
}

/** http2/grpc/auto listeners: HTTP/2 (h2c prior knowledge) and HTTP/1.1 on one port, by sniffing. */
function isHttp2Listener(l: Listener): boolean {
  return l.protocol === 'http2' || l.protocol === 'grpc' || l.protocol === 'auto';
}
