/**
 * Access logs as Istio configures Envoy's file access log: mesh config `accessLogFile`
 * (`/dev/stdout`), `accessLogEncoding` (TEXT | JSON) and `accessLogFormat` (Envoy format
 * commands: `%RESPONSE_CODE%`, `%REQ(X-REQUEST-ID)%`, `%DYNAMIC_METADATA(ns:key)%`, ...; for
 * JSON a JSON object of field -> format). Off unless a file is given.
 *
 * The format is compiled once into an array of field readers; per request the recorder fills
 * one scratch `LogEntry` and the compiled format renders one line. Lines are batched and
 * written through a write stream on the next tick (never a sync write per request); when the
 * stream falls behind by more than 4 MiB, lines are dropped and counted.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { getHeader } from '../headers.js';

export type AccessLogEncoding = 'TEXT' | 'JSON';

export interface AccessLogOptions {
  /** Path, `/dev/stdout` or `/dev/stderr`. */
  file: string;
  encoding?: AccessLogEncoding;
  /** Envoy format string (TEXT) or a JSON object of field -> format string (JSON). */
  format?: string;
}

/** Istio's default TEXT format (`EnvoyTextLogFormat` in pilot). */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
  '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
  '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON fields (`EnvoyJSONLogFormatIstio`). */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

/** RBAC filter dynamic metadata namespace (dry run, Istio's shadow engines). */
const RBAC_NS = 'envoy.filters.http.rbac';

/** Keys of the authorization outcome added to default JSON lines when a request has one. */
export const AUTHZ_FIELDS = {
  dryRunAllowResult: 'istio_dry_run_allow_shadow_engine_result',
  dryRunAllowPolicy: 'istio_dry_run_allow_shadow_effective_policy_id',
  dryRunDenyResult: 'istio_dry_run_deny_shadow_engine_result',
  dryRunDenyPolicy: 'istio_dry_run_deny_shadow_effective_policy_id',
  /** Envoy's RBAC `LOG` action (Istio AUDIT) sets `envoy.common: access_log_hint`. */
  accessLogHint: 'access_log_hint',
  auditPolicy: 'audit_policy_id',
} as const;

/** What one line is made of; a single scratch instance is filled per request or connection. */
export class LogEntry {
  startEpochMs = 0;
  method = '';
  path = '';
  protocol = '';
  status = 0;
  flags = '-';
  details = '';
  terminationDetails = '';
  transportFailure = '';
  bytesReceived = 0;
  bytesSent = 0;
  durationMs = 0;
  requestHeaders: readonly string[] = [];
  requestId = '';
  authority = '';
  upstreamHost = '';
  upstreamCluster = '';
  upstreamLocal = '';
  downstreamLocal = '';
  downstreamRemote = '';
  peerUriSan = '';
  serverName = '';
  routeName = '';
  traceId = '';
  grpcStatus = -1;
  auditPolicy = '';
  dryRunAllowResult = '';
  dryRunAllowPolicy = '';
  dryRunDenyResult = '';
  dryRunDenyPolicy = '';

  reset(): this {
    this.method = this.path = this.protocol = this.details = this.terminationDetails = '';
    this.transportFailure = this.requestId = this.authority = this.upstreamHost = '';
    this.upstreamCluster = this.upstreamLocal = this.downstreamLocal = this.downstreamRemote = '';
    this.peerUriSan = this.serverName = this.routeName = this.traceId = this.auditPolicy = '';
    this.dryRunAllowResult = this.dryRunAllowPolicy = this.dryRunDenyResult = this.dryRunDenyPolicy = '';
    this.flags = '-';
    this.status = this.bytesReceived = this.bytesSent = this.durationMs = 0;
    this.grpcStatus = -1;
    this.requestHeaders = EMPTY;
    return this;
  }
}
const EMPTY: readonly string[] = [];

/** A compiled format command: a string ('' = absent, printed `-` / null) or a number. */
type Reader = (e: LogEntry) => string | number;

let isoMs = -1;
let iso = '';
/** ISO time of `ms`, cached for the last millisecond (lines of one burst share it). */
function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  if (whole !== isoMs) {
    isoMs = whole;
    iso = new Date(whole).toISOString();
  }
  return iso;
}

const SIMPLE: Record<string, Reader> = {
  START_TIME: (e) => isoTime(e.startEpochMs),
  PROTOCOL: (e) => e.protocol,
  RESPONSE_CODE: (e) => e.status,
  RESPONSE_FLAGS: (e) => e.flags,
  RESPONSE_CODE_DETAILS: (e) => e.details,
  CONNECTION_TERMINATION_DETAILS: (e) => e.terminationDetails,
  UPSTREAM_TRANSPORT_FAILURE_REASON: (e) => e.transportFailure,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => Math.round(e.durationMs),
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => e.upstreamCluster,
  UPSTREAM_CLUSTER_RAW: (e) => e.upstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: (e) => e.upstreamLocal,
  DOWNSTREAM_LOCAL_ADDRESS: (e) => e.downstreamLocal,
  DOWNSTREAM_REMOTE_ADDRESS: (e) => e.downstreamRemote,
  DOWNSTREAM_PEER_URI_SAN: (e) => e.peerUriSan,
  REQUESTED_SERVER_NAME: (e) => e.serverName,
  ROUTE_NAME: (e) => e.routeName,
  TRACE_ID: (e) => e.traceId,
  GRPC_STATUS_NUMBER: (e) => (e.grpcStatus >= 0 ? e.grpcStatus : ''),
  HOSTNAME: () => HOST,
};
const HOST = process.env.HOSTNAME ?? '';

function requestHeader(name: string): Reader {
  const lower = name.toLowerCase();
  if (lower === ':method') return (e) => e.method;
  if (lower === ':path') return (e) => e.path;
  if (lower === ':authority' || lower === 'host') return (e) => e.authority;
  if (lower === 'x-request-id') return (e) => e.requestId;
  return (e) => getHeader(e.requestHeaders, lower) ?? '';
}

const DYNAMIC: Record<string, Reader> = {
  [`${RBAC_NS}:${AUTHZ_FIELDS.dryRunAllowResult}`]: (e) => e.dryRunAllowResult,
  [`${RBAC_NS}:${AUTHZ_FIELDS.dryRunAllowPolicy}`]: (e) => e.dryRunAllowPolicy,
  [`${RBAC_NS}:${AUTHZ_FIELDS.dryRunDenyResult}`]: (e) => e.dryRunDenyResult,
  [`${RBAC_NS}:${AUTHZ_FIELDS.dryRunDenyPolicy}`]: (e) => e.dryRunDenyPolicy,
  'envoy.common:access_log_hint': (e) => (e.auditPolicy !== '' ? 'true' : ''),
  [`${RBAC_NS}:${AUTHZ_FIELDS.auditPolicy}`]: (e) => e.auditPolicy,
};

/** One `%COMMAND%` (without the percent signs) -> reader; throws naming an unknown command. */
function command(cmd: string): Reader {
  const m = /^([A-Z_0-9]+)(?:\((.*)\))?(?::(\d+))?$/.exec(cmd);
  if (m === null) throw new Error(`access log format: cannot parse %${cmd}%`);
  const [, name, arg, maxLen] = m;
  let r: Reader | undefined;
  if (arg === undefined) r = SIMPLE[name!];
  else if (name === 'REQ') {
    const [first, alt] = arg.split('?');
    const a = requestHeader(first!);
    const b = alt !== undefined ? requestHeader(alt) : null;
    r = b === null ? a : (e) => a(e) || b(e);
  } else if (name === 'RESP' || name === 'TRAILER') {
    r = () => ''; // response headers are not kept for logging (always absent, printed `-`)
  } else if (name === 'DYNAMIC_METADATA') {
    r = DYNAMIC[arg] ?? (() => '');
  } else if (name === 'START_TIME') {
    r = SIMPLE.START_TIME;
  }
  if (r === undefined) throw new Error(`access log format: unsupported command %${cmd}%`);
  if (maxLen !== undefined) {
    const n = Number(maxLen);
    const inner = r;
    return (e) => {
      const v = inner(e);
      return typeof v === 'string' && v.length > n ? v.slice(0, n) : v;
    };
  }
  return r;
}

/** Literal text and commands of an Envoy format string. */
function compileTemplate(format: string): Array<string | Reader> {
  const parts: Array<string | Reader> = [];
  let lit = '';
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    if (c !== '%') {
      lit += c;
      i++;
      continue;
    }
    if (format[i + 1] === '%') {
      lit += '%';
      i += 2;
      continue;
    }
    const end = format.indexOf('%', i + 1);
    if (end < 0) throw new Error(`access log format: unterminated command at offset ${i}`);
    if (lit !== '') parts.push(lit);
    lit = '';
    parts.push(command(format.slice(i + 1, end)));
    i = end + 1;
  }
  if (lit !== '') parts.push(lit);
  return parts;
}

function renderText(parts: ReadonlyArray<string | Reader>, e: LogEntry): string {
  let out = '';
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (typeof p === 'string') out += p;
    else {
      const v = p(e);
      out += v === '' ? '-' : v;
    }
  }
  return out;
}

export type LineFormatter = (e: LogEntry) => string;

/**
 * Compiles the line format. JSON: a lone command keeps its type (numbers stay numbers,
 * absent values are null, as Envoy's typed JSON format); mixed text is a string. The default
 * JSON format adds the authorization outcome (dry run, AUDIT) when a request has one.
 */
export function compileFormat(encoding: AccessLogEncoding, format?: string): LineFormatter {
  if (encoding === 'TEXT') {
    const parts = compileTemplate(format ?? ISTIO_TEXT_FORMAT);
    const nl = (format ?? ISTIO_TEXT_FORMAT).endsWith('\n');
    return nl ? (e) => renderText(parts, e) : (e) => `${renderText(parts, e)}\n`;
  }
  let fields: Record<string, string>;
  if (format === undefined) fields = { ...ISTIO_JSON_FORMAT };
  else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(format);
    } catch {
      throw new Error('access log format: JSON encoding needs a JSON object of field -> format string');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('access log format: JSON encoding needs a JSON object of field -> format string');
    fields = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== 'string') throw new Error(`access log format: field "${k}" must be a format string`);
      fields[k] = v;
    }
  }
  const keys = Object.keys(fields);
  const prefixes = keys.map((k, i) => `${i === 0 ? '{' : ','}${JSON.stringify(k)}:`);
  const values = keys.map((k) => {
    const parts = compileTemplate(fields[k]!);
    if (parts.length === 1 && typeof parts[0] !== 'string') return parts[0] as Reader;
    return (e: LogEntry) => renderText(parts, e);
  });
  const withAuthz = format === undefined;
  return (e) => {
    let out = '';
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!(e);
      out += prefixes[i]! + (v === '' ? 'null' : typeof v === 'number' ? String(v) : JSON.stringify(v));
    }
    if (withAuthz) out += authzJson(e);
    return `${out}}\n`;
  };
}

function authzJson(e: LogEntry): string {
  let out = '';
  if (e.dryRunAllowResult !== '') {
    out += `,"${AUTHZ_FIELDS.dryRunAllowResult}":"${e.dryRunAllowResult}"`;
    out += `,"${AUTHZ_FIELDS.dryRunAllowPolicy}":${e.dryRunAllowPolicy ? JSON.stringify(e.dryRunAllowPolicy) : 'null'}`;
  }
  if (e.dryRunDenyResult !== '') {
    out += `,"${AUTHZ_FIELDS.dryRunDenyResult}":"${e.dryRunDenyResult}"`;
    out += `,"${AUTHZ_FIELDS.dryRunDenyPolicy}":${e.dryRunDenyPolicy ? JSON.stringify(e.dryRunDenyPolicy) : 'null'}`;
  }
  if (e.auditPolicy !== '')
    out += `,"${AUTHZ_FIELDS.accessLogHint}":true,"${AUTHZ_FIELDS.auditPolicy}":${JSON.stringify(e.auditPolicy)}`;
  return out;
}

const MAX_BACKLOG = 4 * 1024 * 1024;

/** The file side: lines batched per tick into one write; bounded backlog. */
export class AccessLogWriter {
  readonly format: LineFormatter;
  readonly entry = new LogEntry();
  private readonly out: Writable;
  private readonly owned: boolean;
  private buf: string[] = [];
  private scheduled = false;
  written = 0;
  dropped = 0;
  private failed = false;
  private readonly onError: (err: Error) => void;

  constructor(opts: AccessLogOptions, onError: (err: Error) => void) {
    this.format = compileFormat(opts.encoding ?? 'TEXT', opts.format);
    this.onError = onError;
    if (opts.file === '/dev/stdout') {
      this.out = process.stdout;
      this.owned = false;
    } else if (opts.file === '/dev/stderr') {
      this.out = process.stderr;
      this.owned = false;
    } else {
      this.out = createWriteStream(opts.file, { flags: 'a' });
      this.owned = true;
    }
    this.out.on('error', (err: Error) => {
      if (!this.failed) this.onError(err);
      this.failed = true;
    });
  }

  /** Renders the scratch entry and queues the line. */
  commit(): void {
    if (this.failed || this.out.writableLength > MAX_BACKLOG) {
      this.dropped++;
      return;
    }
    this.buf.push(this.format(this.entry));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(flushWriter, this);
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.buf.length === 0) return;
    const data = this.buf.length === 1 ? this.buf[0]! : this.buf.join('');
    this.written += this.buf.length;
    this.buf = [];
    if (!this.failed) this.out.write(data);
  }

  async close(): Promise<void> {
    this.flush();
    if (!this.owned) return;
    await new Promise<void>((resolve) => this.out.end(resolve));
  }
}

function flushWriter(w: AccessLogWriter): void {
  w.flush();
}
