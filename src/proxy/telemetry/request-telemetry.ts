/**
 * Per-proxy tracing and access logging, and the per-request context that carries them from
 * the first look at a request to its end (http/recorder.ts). Only exists when tracing or an
 * access log is configured: without both, the recorder holds null and requests pay nothing.
 *
 * A request's context is attached to its downstream stream object under a symbol the first
 * time something needs it (trace propagation on forward, an authorization outcome, the end).
 */
import type { Socket } from 'node:net';
import type { AuthzDecision } from '../../authz/index.js';
import { parseClusterName, type Workload } from '../../tables/index.js';
import { Flag, flagsString } from '../flags.js';
import { getHeader } from '../headers.js';
import type { Downstream } from '../http/downstream.js';
import type { OpenConnection } from '../tcp/metrics.js';
import { peerOfStream } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';
import { type AccessLogOptions, AccessLogWriter, type LogEntry } from './access-log.js';
import type { Reporter } from './istio-metrics.js';
import {
  decideSampled,
  extractTrace,
  injectTrace,
  newSpanId,
  newTraceId,
  SpanKind,
  type TraceState,
} from './tracing.js';
import { ZipkinExporter, type ZipkinOptions } from './zipkin.js';

export interface TracingConfig {
  /** Percent of new traces sampled, 0..100 (Istio `tracing.sampling`, default 1). */
  sampling: number;
  /** Zipkin collector (`host:port` or URL); absent = propagate and sample, export nothing. */
  zipkin?: Omit<ZipkinOptions, 'debug'>;
}

export interface TelemetryOptions {
  tracing?: TracingConfig;
  accessLog?: AccessLogOptions;
  /** Envoy node id (`sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`), span tag node_id. */
  nodeId?: string;
  /** Pod IP for the spans' localEndpoint. */
  instanceIp?: string;
  meshId?: string;
  clusterId?: string;
}

interface Log {
  debug(msg: string): unknown;
  warn(msg: string): unknown;
  isDebugEnabled(): boolean;
}

const CTX: unique symbol = Symbol('isthmus.requestTelemetry');
interface WithContext {
  [CTX]?: RequestContext | false;
}

interface TraceIds {
  traceId: string;
  spanId: string;
  parentId: string;
  shared: boolean;
}

/** Scratch ids of an unsampled request (filled and used synchronously). */
const ids: TraceIds = { traceId: '', spanId: '', parentId: '', shared: false };

/**
 * This hop's span ids from the incoming trace `t` (Envoy Zipkin, shared_span_context true):
 * a new trace without one; the server half reuses the caller's span; a client span is a child.
 */
function assignIds(t: TraceState, kind: number, out: TraceIds): void {
  if (t.traceId === '') {
    out.traceId = newTraceId();
    out.spanId = newSpanId();
    out.parentId = '';
    out.shared = false;
  } else if (kind === SpanKind.server) {
    out.traceId = t.traceId;
    out.spanId = t.parentSpan;
    out.parentId = t.grandParent;
    out.shared = true;
  } else {
    out.traceId = t.traceId;
    out.spanId = newSpanId();
    out.parentId = t.parentSpan;
    out.shared = false;
  }
}

/** Everything a request's span and log line need beyond what the recorder is handed. */
export class RequestContext {
  readonly telemetry: ProxyTelemetry;
  readonly startEpochMs: number;
  readonly kind: number;
  traceId = '';
  spanId = '';
  parentId = '';
  shared = false;
  sampled = false;
  requestId = '';
  routeName = '';
  auditPolicy = '';
  deniedPolicy = '';
  dryRunAllowResult = '';
  dryRunAllowPolicy = '';
  dryRunDenyResult = '';
  dryRunDenyPolicy = '';
  // Filled at the end, for the exporter (sampled requests only).
  durationUs = 0;
  name = '';
  url = '';
  method = '';
  protocol = '';
  status = 0;
  flags = 0;
  userAgent = '';
  upstreamCluster = '';
  upstreamAddress = '';
  upstreamPort = 0;
  peerAddress = '';
  requestSize = 0;
  responseSize = 0;

  constructor(telemetry: ProxyTelemetry, startEpochMs: number, kind: number) {
    this.telemetry = telemetry;
    this.startEpochMs = startEpochMs;
    this.kind = kind;
  }

  /** Zipkin v2 JSON (called by the exporter at flush time). */
  toZipkin(): unknown {
    const t = this.telemetry;
    const tags: Record<string, string> = {
      component: 'proxy',
      'http.url': this.url,
      'http.method': this.method,
      'http.protocol': this.protocol,
      'http.status_code': String(this.status),
      response_flags: flagsString(this.flags),
      request_size: String(this.requestSize),
      response_size: String(this.responseSize),
      upstream_cluster: this.upstreamCluster || '-',
      'upstream_cluster.name': this.upstreamCluster || '-',
      downstream_cluster: '-',
      user_agent: this.userAgent || '-',
      'guid:x-request-id': this.requestId,
      node_id: t.nodeId,
      'istio.canonical_service': t.canonicalService,
      'istio.canonical_revision': t.canonicalRevision,
      'istio.namespace': t.namespace,
      'istio.mesh_id': t.meshId,
      'istio.cluster_id': t.clusterId,
    };
    if (this.upstreamAddress) tags.upstream_address = `${this.upstreamAddress}:${this.upstreamPort}`;
    if (this.peerAddress) tags['peer.address'] = this.peerAddress;
    if (this.status >= 500 || this.status === 0) tags.error = 'true';
    if (this.dryRunAllowResult) {
      tags['istio.authorization.dry_run.allow_policy.result'] = this.dryRunAllowResult;
      if (this.dryRunAllowPolicy)
        tags['istio.authorization.dry_run.allow_policy.name'] = this.dryRunAllowPolicy;
    }
    if (this.dryRunDenyResult) {
      tags['istio.authorization.dry_run.deny_policy.result'] = this.dryRunDenyResult;
      if (this.dryRunDenyPolicy) tags['istio.authorization.dry_run.deny_policy.name'] = this.dryRunDenyPolicy;
    }
    const span: Record<string, unknown> = {
      traceId: this.traceId,
      id: this.spanId,
      name: this.name,
      kind: this.kind === SpanKind.client ? 'CLIENT' : 'SERVER',
      timestamp: Math.round(this.startEpochMs * 1000),
      duration: Math.max(1, this.durationUs),
      localEndpoint: t.localEndpoint,
      tags,
    };
    if (this.parentId) span.parentId = this.parentId;
    if (this.shared) span.shared = true;
    if (this.kind === SpanKind.client && this.upstreamAddress) {
      span.remoteEndpoint = endpointJson(this.upstreamAddress, this.upstreamPort);
    }
    return span;
  }
}

function endpointJson(address: string, port: number): Record<string, unknown> {
  const e: Record<string, unknown> = address.includes(':') ? { ipv6: address } : { ipv4: address };
  if (port > 0) e.port = port;
  return e;
}

const U = 'unknown';

export class ProxyTelemetry {
  readonly tracing: boolean;
  readonly samplingPct: number;
  readonly exporter: ZipkinExporter | null;
  /** The file access log; replaced on a table swap that changes the mesh setting (setAccessLog). */
  accessLog: AccessLogWriter | null;
  private accessLogKey: string;
  private readonly log: Log;
  readonly nodeId: string;
  readonly meshId: string;
  readonly clusterId: string;
  private readonly instanceIp: string;
  canonicalService = U;
  canonicalRevision = 'latest';
  namespace = U;
  localEndpoint: Record<string, unknown> = { serviceName: U };

  constructor(opts: TelemetryOptions, log: Log) {
    this.tracing = opts.tracing !== undefined;
    this.samplingPct = opts.tracing?.sampling ?? 1;
    const z = opts.tracing?.zipkin;
    this.exporter = z
      ? new ZipkinExporter({
          ...z,
          debug: (m) => {
            if (log.isDebugEnabled()) log.debug(m);
          },
        })
      : null;
    this.log = log;
    this.accessLog = opts.accessLog ? this.newWriter(opts.accessLog) : null;
    this.accessLogKey = accessLogKey(opts.accessLog);
    this.nodeId = opts.nodeId ?? '';
    this.meshId = opts.meshId ?? 'cluster.local';
    this.clusterId = opts.clusterId ?? 'Kubernetes';
    this.instanceIp = opts.instanceIp ?? '';
    this.setNode(undefined);
  }

  /** Tracing or an access log is on: the listeners need this object (else they get null). */
  get active(): boolean {
    return this.tracing || this.accessLog !== null;
  }

  /**
   * Turns the access log on, off, or to another file/encoding/format (mesh config, applied on a
   * table swap). Requests ending from now on write to the new writer; the old one is flushed
   * and closed. Returns false when nothing changed. Throws (nothing changed) when the format
   * does not compile.
   */
  setAccessLog(opts: AccessLogOptions | undefined): boolean {
    const key = accessLogKey(opts);
    if (key === this.accessLogKey) return false;
    const next = opts ? this.newWriter(opts) : null;
    const prev = this.accessLog;
    this.accessLog = next;
    this.accessLogKey = key;
    if (prev !== null) void prev.close();
    return true;
  }

  private newWriter(opts: AccessLogOptions): AccessLogWriter {
    return new AccessLogWriter(opts, (err) => this.log.warn(`access log ${opts.file}: ${err.message}`));
  }

  /** The proxy's workload (config `node`): span service name and Istio tags. */
  setNode(node: Workload | undefined): void {
    const n = node ?? {};
    const labels = n.labels ?? {};
    this.namespace = n.namespace ?? U;
    this.canonicalService = labels['service.istio.io/canonical-name'] ?? n.app ?? n.name ?? U;
    this.canonicalRevision = labels['service.istio.io/canonical-revision'] ?? n.version ?? 'latest';
    // Istio's default tracing service name: APP_LABEL_AND_NAMESPACE.
    const app = n.app ?? n.name ?? U;
    const ep: Record<string, unknown> = { serviceName: `${app}.${this.namespace}` };
    if (this.instanceIp) ep[this.instanceIp.includes(':') ? 'ipv6' : 'ipv4'] = this.instanceIp;
    this.localEndpoint = ep;
  }

  /**
   * The request's context, created (with its trace decision) on first use. `false` when there
   * is nothing to keep: traced, not sampled, no access log (the request then costs only the
   * header pass and a span id, and this marker).
   */
  private state(stream: Downstream, reporter: Reporter, raw: readonly string[]): RequestContext | false {
    const s = stream as unknown as WithContext;
    const cur = s[CTX];
    if (cur !== undefined) return cur;
    const kind = reporter === 'source' ? SpanKind.client : SpanKind.server;
    let sampled = false;
    let t: TraceState | null = null;
    if (this.tracing) {
      t = extractTrace(raw);
      sampled = decideSampled(t, this.samplingPct);
      if (!sampled && this.accessLog === null) {
        s[CTX] = false;
        return false;
      }
    }
    const ctx = new RequestContext(this, Date.now(), kind);
    if (t !== null) {
      ctx.sampled = sampled;
      assignIds(t, kind, ctx);
    }
    s[CTX] = ctx;
    return ctx;
  }

  /**
   * A request goes upstream with `headers` (flat, final except for the trace): writes this
   * hop's trace headers and notes the request id and route.
   */
  forwarded(
    stream: Downstream,
    reporter: Reporter,
    raw: readonly string[],
    headers: string[],
    route: string,
  ): void {
    const ctx = this.state(stream, reporter, raw);
    if (ctx === false) {
      // Unsampled: propagate only, with ids in a scratch object.
      assignIds(extractTrace(raw), reporter === 'source' ? SpanKind.client : SpanKind.server, ids);
      injectTrace(headers, ids.traceId, ids.spanId, ids.parentId, false);
      return;
    }
    ctx.routeName = route;
    ctx.requestId = getHeader(headers, 'x-request-id') ?? '';
    if (this.tracing) injectTrace(headers, ctx.traceId, ctx.spanId, ctx.parentId, ctx.sampled);
  }

  /** Records the authorization outcome of an inbound request (dry run, AUDIT, denial). */
  noteAuthz(stream: Downstream, d: AuthzDecision): void {
    if (!d.audit && d.allowed && d.dryRunAllowResult === '' && d.dryRunDenyResult === '') return;
    const ctx = this.state(stream, 'destination', stream.rawHeaders);
    if (ctx === false) return;
    ctx.auditPolicy = d.audit ? d.auditPolicy : '';
    ctx.deniedPolicy = d.allowed ? '' : d.ruleId || 'none';
    ctx.dryRunAllowResult = d.dryRunAllowResult;
    ctx.dryRunAllowPolicy = d.dryRunAllowPolicy;
    ctx.dryRunDenyResult = d.dryRunDenyResult;
    ctx.dryRunDenyPolicy = d.dryRunDenyPolicy;
  }

  /** End of an HTTP request: completes and queues the span, writes the log line. */
  end(
    reporter: Reporter,
    stream: Downstream,
    cluster: ClusterState | null,
    endpoint: EndpointState | null,
    status: number,
    flags: number,
    durationMs: number,
    requestBytes: number,
    responseBytes: number,
    grpcStatus: number,
  ): void {
    const raw = stream.rawHeaders;
    const ctx = this.state(stream, reporter, raw);
    if (ctx === false) return;
    if (ctx.requestId === '') ctx.requestId = getHeader(raw, 'x-request-id') ?? '';
    if (this.exporter !== null && ctx.sampled) {
      const authority = getHeader(raw, 'host') ?? '';
      ctx.durationUs = Math.round(durationMs * 1000);
      ctx.name = spanName(cluster, authority);
      ctx.url = `http://${authority}${stream.url}`;
      ctx.method = stream.method;
      ctx.protocol = stream.h2 === true ? 'HTTP/2' : 'HTTP/1.1';
      ctx.status = status;
      ctx.flags = flags;
      ctx.userAgent = getHeader(raw, 'user-agent') ?? '';
      ctx.upstreamCluster = cluster?.name ?? '';
      ctx.upstreamAddress = endpoint?.address ?? '';
      ctx.upstreamPort = endpoint?.port ?? 0;
      ctx.peerAddress = socketOf(stream)?.remoteAddress ?? '';
      ctx.requestSize = requestBytes;
      ctx.responseSize = responseBytes;
      this.exporter.push(ctx);
    }
    const w = this.accessLog;
    if (w === null) return;
    const e = w.entry.reset();
    e.startEpochMs = ctx.startEpochMs;
    e.method = stream.method;
    e.path = stream.url;
    e.protocol = stream.h2 === true ? 'HTTP/2' : 'HTTP/1.1';
    e.status = status;
    e.flags = flagsString(flags);
    e.details = responseCodeDetails(status, flags, endpoint !== null, ctx);
    e.bytesReceived = requestBytes;
    e.bytesSent = responseBytes;
    e.durationMs = durationMs;
    e.requestHeaders = raw;
    e.requestId = ctx.requestId;
    e.authority = getHeader(raw, 'host') ?? '';
    e.routeName = ctx.routeName;
    e.traceId = ctx.traceId;
    e.grpcStatus = grpcStatus;
    if (cluster !== null) e.upstreamCluster = cluster.name;
    if (endpoint !== null) e.upstreamHost = hostPort(endpoint.address, endpoint.port);
    const socket = socketOf(stream);
    if (socket !== undefined) {
      e.downstreamLocal = hostPort(plainIp(socket.localAddress), socket.localPort ?? 0);
      e.downstreamRemote = hostPort(plainIp(socket.remoteAddress), socket.remotePort ?? 0);
    }
    const peer = peerOfStream(stream);
    if (peer !== null) {
      e.peerUriSan = peer.principal;
      e.serverName = peer.sni;
    }
    e.auditPolicy = ctx.auditPolicy;
    e.dryRunAllowResult = ctx.dryRunAllowResult;
    e.dryRunAllowPolicy = ctx.dryRunAllowPolicy;
    e.dryRunDenyResult = ctx.dryRunDenyResult;
    e.dryRunDenyPolicy = ctx.dryRunDenyPolicy;
    w.commit();
  }

  /** A TCP connection closed (tcp/metrics.ts): one access log line. */
  tcpClosed(down: Socket, info: OpenConnection, cluster: string, flags: number, sni: string): void {
    const w = this.accessLog;
    if (w === null) return;
    const e: LogEntry = w.entry.reset();
    e.startEpochMs = info.startEpochMs;
    e.flags = flagsString(flags);
    e.bytesReceived = down.bytesRead;
    e.bytesSent = down.bytesWritten;
    e.durationMs = Date.now() - info.startEpochMs;
    e.upstreamCluster = cluster;
    e.serverName = sni;
    if (info.upstreamAddress !== '') {
      e.upstreamHost = hostPort(plainIp(info.upstreamAddress), info.upstreamPort);
      e.upstreamLocal = hostPort(plainIp(info.localAddress), info.localPort);
    }
    e.downstreamLocal = hostPort(plainIp(down.localAddress), down.localPort ?? 0);
    e.downstreamRemote = hostPort(plainIp(down.remoteAddress), down.remotePort ?? 0);
    w.commit();
  }

  /** Prometheus text: the exporter's and the access log's counters. */
  render(): string {
    const out: string[] = [];
    const z = this.exporter;
    if (z !== null) {
      out.push('# TYPE envoy_tracing_zipkin_spans_sent counter');
      out.push(`envoy_tracing_zipkin_spans_sent ${z.stats.sent}`);
      out.push('# TYPE envoy_tracing_zipkin_spans_dropped counter');
      out.push(`envoy_tracing_zipkin_spans_dropped ${z.stats.dropped}`);
      out.push('# TYPE envoy_tracing_zipkin_reports_failed counter');
      out.push(`envoy_tracing_zipkin_reports_failed ${z.stats.failed}`);
    }
    if (this.accessLog !== null) {
      out.push('# TYPE envoy_access_logs_file_dropped counter');
      out.push(`envoy_access_logs_file_dropped ${this.accessLog.dropped}`);
    }
    return out.length > 0 ? `${out.join('\n')}\n` : '';
  }

  /** Sends the queued spans and flushes the log. */
  async close(): Promise<void> {
    await Promise.all([this.exporter?.close(), this.accessLog?.close()]);
  }
}

function accessLogKey(o: AccessLogOptions | undefined): string {
  return o ? `${o.file}\n${o.encoding ?? 'TEXT'}\n${o.format ?? ''}` : '';
}

/** Envoy's %RESPONSE_CODE_DETAILS% for what this proxy does. */
function responseCodeDetails(status: number, flags: number, upstream: boolean, ctx: RequestContext): string {
  if (ctx.deniedPolicy !== '') return `rbac_access_denied_matched_policy[${ctx.deniedPolicy}]`;
  if (flags & Flag.NR) return 'route_not_found';
  if (flags & Flag.UH) return 'no_healthy_upstream';
  if (flags & Flag.UO) return 'upstream_reset_before_response_started{overflow}';
  if (flags & Flag.UF) return 'upstream_reset_before_response_started{connection_failure}';
  if (flags & Flag.UT) return 'upstream_response_timeout';
  if (flags & Flag.FI) return 'fault_filter_abort';
  if (flags & Flag.RL) return 'local_rate_limited';
  if (flags & Flag.DC) return 'downstream_remote_disconnect';
  if (flags & Flag.UC) return 'upstream_reset_before_response_started{connection_termination}';
  if (upstream) return 'via_upstream';
  if (status === 401) return 'jwt_authn_access_denied';
  return status === 0 ? '' : 'direct_response';
}

/** Envoy's decorator operation as Istio sets it: `<service host>:<port>/*`. */
function spanName(cluster: ClusterState | null, authority: string): string {
  if (cluster !== null) {
    const parsed = parseClusterName(cluster.name);
    const host = cluster.def.service?.host ?? parsed?.host;
    if (host && parsed?.port !== undefined) return `${host}:${parsed.port}/*`;
  }
  return `${authority || U}/*`;
}

function socketOf(stream: Downstream): Socket | undefined {
  const s = stream as unknown as {
    conn?: { socket?: Socket };
    stream?: { session?: { socket?: Socket } | undefined };
  };
  return s.conn?.socket ?? s.stream?.session?.socket;
}

function plainIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.length > 7 && ip.startsWith('::ffff:') && ip.indexOf('.') > 0 ? ip.slice(7) : ip;
}

function hostPort(ip: string, port: number): string {
  if (ip === '') return '';
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
