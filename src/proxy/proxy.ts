/**
 * The sidecar proxy: owns the current Snapshot, the cluster registry, the listeners and the
 * admin/metrics/health servers. `applyTables` / `applyEndpoints` validate first; a rejected
 * config leaves the last good one in place and is visible on /config_dump, /stats and
 * Prometheus. Pipeline: listener -> http handler -> router -> cluster -> balancer -> endpoint.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'winston';
import {
  type AccessLogSetting,
  type EndpointTable,
  type TableError,
  validateEndpoints,
  validateTables,
  type Workload,
} from '../tables/index.js';
import { type AdminTarget, adminRoute, healthRoute, prometheusRoute, serve } from './admin/admin-server.js';
import { type ConfigStatus, clustersJson, clustersText, proxyPrometheus, statsText } from './admin/views.js';
import { InboundSecurityState } from './http/inbound-security.js';
import { type ListenerBindOptions, ListenerManager } from './http/listeners.js';
import { createLogger, type LogLevel } from './log.js';
import { Snapshot } from './snapshot.js';
import { type TcpOptions, TcpProxy } from './tcp/index.js';
import { IstioMetrics } from './telemetry/istio-metrics.js';
import { ProxyTelemetry, type TelemetryOptions } from './telemetry/request-telemetry.js';
import { type CertificateSource, MeshIdentity } from './tls/identity.js';
import { InboundTls } from './tls/inbound.js';
import { ClusterRegistry } from './upstream/registry.js';

export interface ProxyOptions {
  /** Admin port (Envoy 15000); 0 = ephemeral, null = disabled. */
  adminPort?: number | null;
  /** Prometheus port (15090); 0 = ephemeral, null = disabled. */
  statsPort?: number | null;
  /** Health port (15021); 0 = ephemeral, null = disabled. */
  healthPort?: number | null;
  /** Address of admin, stats and health servers; default 127.0.0.1 for admin, 0.0.0.0 else. */
  adminAddress?: string;
  serviceAddress?: string;
  listeners?: ListenerBindOptions;
  logLevel?: LogLevel;
  logger?: Logger;
  /** Called after POST /quitquitquit has stopped the proxy (the CLI exits there). */
  onQuit?: () => void;
  /** This workload, for metrics labels, until a config brings its own `node` (sidecar: from env). */
  node?: Workload;
  /** Ready before any config arrived (sidecar mode: passthrough works without config). */
  readyWithoutConfig?: boolean;
  tcp?: TcpOptions;
  /**
   * The workload certificate (the agent's CertificateManager). With it the proxy does mesh
   * mTLS (client side for ISTIO_MUTUAL clusters, server side on the inbound capture port) and
   * is not ready until the first certificate arrived.
   */
  certificates?: CertificateSource;
  /**
   * Tracing (Zipkin) and access logs; both off when absent (telemetry/request-telemetry.ts).
   * An `accessLog` here (per pod: env/flags) wins over the mesh-wide one of the tables
   * (`telemetry.accessLog`, mesh config), which is then ignored.
   */
  telemetry?: TelemetryOptions;
}

export type ApplyResult =
  | { ok: true; version: string }
  | { ok: false; version: string; errors: TableError[] };

export class SidecarProxy implements AdminTarget {
  snapshot: Snapshot = Snapshot.empty();
  readonly metrics = new IstioMetrics();
  readonly registry = new ClusterRegistry();
  /** AuthorizationPolicy / RequestAuthentication / rate limits of the inbound side (src/authz). */
  readonly security = new InboundSecurityState();
  readonly log: Logger;
  /** Tracing and access logs, whether on or not (the access log can come with a config). */
  private readonly telemetryState: ProxyTelemetry;
  /** The access log is set per pod (options): the mesh setting of the tables is ignored. */
  private readonly accessLogPinned: boolean;
  private readonly listeners: ListenerManager;
  private readonly servers: http.Server[] = [];
  private readonly ports = { admin: 0, stats: 0, health: 0 };
  private endpointTable: EndpointTable | null = null;
  private draining = false;
  private applying: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Extra readiness conditions (capture listeners bound; later: first config, certificate). */
  private readonly readiness: Array<() => boolean> = [];
  /** TCP listeners, TLS passthrough, sniffing and original-destination passthrough (tcp/). */
  readonly tcp: TcpProxy;
  /** The workload's mTLS identity (null without a certificate source: no mesh mTLS). */
  readonly identity: MeshIdentity | null;
  /** Inbound mTLS termination for the capture listener (null without an identity). */
  readonly inboundTls: InboundTls | null;
  readonly status: ConfigStatus = {
    version: '',
    accepted: 0,
    rejected: 0,
    endpointsVersion: '',
    endpointsAccepted: 0,
    endpointsRejected: 0,
    lastRejection: null,
  };

  constructor(private readonly opts: ProxyOptions = {}) {
    this.log = opts.logger ?? createLogger(opts.logLevel ?? 'info');
    this.telemetryState = new ProxyTelemetry(opts.telemetry ?? {}, this.log);
    this.accessLogPinned = opts.telemetry?.accessLog !== undefined;
    this.listeners = new ListenerManager(
      opts.listeners ?? {},
      this.metrics,
      this.log,
      () => this.snapshot,
      this.telemetry,
    );
    this.tcp = new TcpProxy(opts.listeners ?? {}, this.log, () => this.snapshot, this, opts.tcp);
    if (this.telemetryState.accessLog !== null) this.tcp.metrics.setCloseHook(this.telemetryState);
    if (opts.node) {
      this.metrics.setNode(opts.node);
      this.tcp.metrics.setNode(opts.node);
      this.telemetryState.setNode(opts.node);
    }
    this.identity = opts.certificates ? new MeshIdentity(opts.certificates, this.log) : null;
    this.inboundTls = this.identity
      ? new InboundTls(this.identity, this.log, opts.tcp?.sniffTimeoutMs)
      : null;
    this.registry.tls = { identity: this.identity, log: this.log };
    const identity = this.identity;
    if (identity !== null) this.addReadinessCheck(() => identity.ready);
  }

  /** Tracing and access logs; null when neither is on (requests then pay nothing). */
  get telemetry(): ProxyTelemetry | null {
    return this.telemetryState.active ? this.telemetryState : null;
  }

  /**
   * The mesh-wide access log of a new config: turns it on, off or to another file for the
   * requests and connections that start from now on. Ignored when the access log is set per
   * pod; a format that does not compile keeps the current log (and says why).
   */
  private applyAccessLog(setting: AccessLogSetting | undefined): void {
    if (this.accessLogPinned) {
      if (setting) this.log.debug('mesh access log ignored: set per pod (env/flags), which wins');
      return;
    }
    let changed: boolean;
    try {
      changed = this.telemetryState.setAccessLog(setting);
    } catch (err) {
      this.log.warn(
        `mesh access log ${setting?.file}: ${err instanceof Error ? err.message : String(err)}; keeping the current access log`,
      );
      return;
    }
    if (!changed) return;
    this.listeners.setTelemetry(this.telemetry);
    this.tcp.metrics.setCloseHook(this.telemetryState.accessLog !== null ? this.telemetryState : null);
    this.log.info(
      setting ? `access log on: ${setting.file} (${setting.encoding ?? 'TEXT'})` : 'access log off',
    );
  }

  /** Hands a connection accepted elsewhere to an HTTP listener's server (see tcp/, sidecar/). */
  acceptHttp(listener: string, socket: Socket, h2: boolean): boolean {
    return this.listeners.accept(listener, socket, h2);
  }

  /** Adds a condition /healthz/ready and /ready wait for. */
  addReadinessCheck(check: () => boolean): void {
    this.readiness.push(check);
  }

  /** Starts the admin, Prometheus and health servers (listeners come with the config). */
  async start(): Promise<void> {
    const adminHost = this.opts.adminAddress ?? '127.0.0.1';
    const svcHost = this.opts.serviceAddress ?? '0.0.0.0';
    const plan: Array<[keyof typeof this.ports, number | null, string, typeof adminRoute]> = [
      ['admin', this.opts.adminPort === undefined ? 15000 : this.opts.adminPort, adminHost, adminRoute],
      ['stats', this.opts.statsPort === undefined ? 15090 : this.opts.statsPort, svcHost, prometheusRoute],
      ['health', this.opts.healthPort === undefined ? 15021 : this.opts.healthPort, svcHost, healthRoute],
    ];
    for (const [key, port, host, route] of plan) {
      if (port === null) continue;
      const s = await serve(route, this, host, port);
      this.servers.push(s.server);
      this.ports[key] = s.port;
    }
  }

  get adminPort(): number {
    return this.ports.admin;
  }
  get statsPort(): number {
    return this.ports.stats;
  }
  get healthPort(): number {
    return this.ports.health;
  }

  /** Bound port of a listener by name (differs from the logical port when overridden). */
  listenerPort(name: string): number | undefined {
    return this.listeners.port(name);
  }

  /**
   * Validates and installs new tables. New requests see them as soon as this returns (the
   * swap itself is synchronous); in-flight requests finish on the config they started with.
   */
  applyTables(json: unknown): Promise<ApplyResult> {
    // Serialized: listener syncs of two overlapping applies must not interleave.
    const run = this.applying.then(() => this.applyTablesNow(json));
    this.applying = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async applyTablesNow(json: unknown): Promise<ApplyResult> {
    const v = validateTables(json);
    const version = versionOf(json);
    if (!v.ok) return this.reject(version, v.errors, 'tables');
    let next: Snapshot;
    let clusters: ReturnType<ClusterRegistry['prepare']>;
    try {
      clusters = this.registry.prepare(v.value.clusters);
      next = new Snapshot(v.value, clusters);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return this.reject(version, [{ path: '', message: `compile failed: ${message}` }], 'tables');
    }
    this.registry.commit(clusters, v.value.endpoints);
    this.registry.setLocality(v.value.node?.locality ?? this.opts.node?.locality);
    this.security.install(next, v.value.security, this.log);
    this.applyAccessLog(v.value.telemetry?.accessLog);
    this.metrics.setNode(v.value.node ?? this.opts.node);
    this.tcp.metrics.setNode(v.value.node ?? this.opts.node);
    this.telemetryState.setNode(v.value.node ?? this.opts.node);
    this.snapshot = next;
    this.status.version = next.version;
    this.status.accepted++;
    try {
      await this.listeners.sync(v.value.listeners);
      await this.tcp.sync(v.value.listeners);
    } catch (err) {
      // The routes are live; a listener that failed to bind is an operational error.
      this.log.error(`listener bind failed: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
    this.log.info(`config ${next.version} applied`);
    return { ok: true, version: next.version };
  }

  /** Validates and installs a new endpoint set; routes are untouched. */
  applyEndpoints(json: unknown): ApplyResult {
    const v = validateEndpoints(json);
    const version = versionOf(json);
    if (!v.ok) return this.reject(version, v.errors, 'endpoints');
    this.endpointTable = v.value;
    this.registry.applyEndpoints(v.value.clusters);
    this.status.endpointsVersion = v.value.version;
    this.status.endpointsAccepted++;
    return { ok: true, version: v.value.version };
  }

  private reject(version: string, errors: TableError[], kind: 'tables' | 'endpoints'): ApplyResult {
    if (kind === 'tables') this.status.rejected++;
    else this.status.endpointsRejected++;
    this.status.lastRejection = { version, at: new Date().toISOString(), errors };
    this.log.warn(
      `${kind} ${version || '(no version)'} rejected: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    );
    return { ok: false, version, errors };
  }

  /** Stops accepting, lets in-flight requests finish (bounded by drainMs), closes pools. */
  async stop(drainMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.draining = true;
    this.identity?.close();
    this.security.close();
    await Promise.all([this.listeners.close(drainMs), this.tcp.close(drainMs)]);
    await this.registry.close();
    await this.telemetryState.close();
    for (const s of this.servers) {
      s.close();
      s.closeAllConnections();
    }
  }

  // AdminTarget
  certs(): unknown {
    const id = this.identity;
    if (!id?.ready || !id.notAfter) return { certificates: [] };
    const daysLeft = Math.max(0, Math.floor((id.notAfter.getTime() - Date.now()) / 86_400_000));
    return {
      certificates: [
        {
          cert_chain: [
            {
              subject_alt_names: [{ uri: id.spiffeId }],
              days_until_expiration: String(daysLeft),
              expiration_time: id.notAfter.toISOString(),
            },
          ],
        },
      ],
    };
  }

  configDump(): unknown {
    return {
      version: this.status.version,
      tables: this.status.accepted ? this.snapshot.tables : null,
      endpoints: this.endpointTable,
      unsupportedListeners: Object.fromEntries(
        [...this.listeners.unsupported].filter(([, why]) => !/protocol (tcp|tls) /.test(why)),
      ),
      status: this.status,
    };
  }
  clustersText(): string {
    return clustersText(this.registry.all());
  }
  clustersJson(): unknown {
    return clustersJson(this.registry.all());
  }
  statsText(): string {
    const ls = this.listeners.handlers().map((h) => ({ name: h.spec.name, stats: h.recorder.stats }));
    return statsText(this.registry.all(), ls, this.status);
  }
  prometheus(): string {
    return (
      this.metrics.render() +
      this.tcp.metrics.render() +
      this.security.runtime.dryRun.render() +
      (this.telemetry?.render() ?? '') +
      proxyPrometheus(this.registry.all(), this.status)
    );
  }
  isReady(): boolean {
    if (this.draining || (this.status.accepted === 0 && !this.opts.readyWithoutConfig)) return false;
    for (const check of this.readiness) if (!check()) return false;
    return true;
  }
  logLevel(): string {
    return this.log.level;
  }
  setLogLevel(level: LogLevel): void {
    this.log.level = level;
  }
  quit(): void {
    void this.stop().then(() => this.opts.onQuit?.());
  }
}

function versionOf(json: unknown): string {
  const v = (json as { version?: unknown } | null)?.version;
  return typeof v === 'string' ? v : '';
}
