/**
 * Servers for the HTTP listeners of the current config (our own HTTP/1.1 server, see
 * http1/server.ts). A config swap re-points an unchanged listener's server at its new
 * handler (one assignment, no rebind); listeners that move or disappear are closed
 * gracefully (in-flight requests finish, idle keep-alive connections are closed).
 */
import type { Logger } from 'winston';
import type { Listener } from '../../tables/index.js';
import { DEFAULT_LIMITS, Http1Server } from '../http1/server.js';
import type { Snapshot } from '../snapshot.js';
import type { IstioMetrics } from '../telemetry/istio-metrics.js';
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
}

interface Running {
  spec: Listener;
  bindKey: string;
  server: Http1Server;
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
  ) {}

  port(name: string): number | undefined {
    return this.running.get(name)?.port;
  }

  handlers(): HttpHandler[] {
    return [...this.running.values()].map((r) => r.handler);
  }

  /** Brings the running servers in line with `listeners`. Rejects if a new bind fails. */
  async sync(listeners: readonly Listener[]): Promise<void> {
    const wanted = new Map<string, Listener>();
    this.unsupported.clear();
    for (const l of listeners) {
      if (l.protocol === 'http' || l.protocol === 'auto') wanted.set(l.name, l);
      else this.unsupported.set(l.name, `protocol ${l.protocol} not served yet`);
    }
    const closing: Promise<void>[] = [];
    for (const [name, r] of this.running) {
      const next = wanted.get(name);
      if (next && this.bindKey(next) === r.bindKey) {
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
    const port = this.opts.ports?.[l.name] ?? this.opts.ports?.[String(l.port)] ?? l.port;
    return `${this.opts.address ?? l.address ?? '0.0.0.0'}:${port}`;
  }

  private async open(spec: Listener): Promise<void> {
    const recorder = new RequestRecorder(
      this.metrics,
      spec.direction === 'inbound' ? 'destination' : 'source',
      this.log,
    );
    const handler = new HttpHandler(spec, recorder, this.current);
    const server = new Http1Server(handler.handle, {
      ...DEFAULT_LIMITS,
      ...(this.opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: this.opts.idleTimeoutMs } : {}),
      ...(this.opts.headersTimeoutMs !== undefined ? { headersTimeoutMs: this.opts.headersTimeoutMs } : {}),
    });
    const bindKey = this.bindKey(spec);
    const sep = bindKey.lastIndexOf(':');
    const host = bindKey.slice(0, sep);
    const bound = await server.listen(Number(bindKey.slice(sep + 1)), host);
    this.running.set(spec.name, { spec, bindKey, server, handler, port: bound });
    this.log.info(`listener ${spec.name} (${spec.direction}, logical port ${spec.port}) on ${host}:${bound}`);
  }
}
