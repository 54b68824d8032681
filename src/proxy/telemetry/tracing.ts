/**
 * Distributed tracing as Envoy's Zipkin tracer does it with Istio's configuration.
 *
 * Extract (one pass over the request headers): B3 multi-header (`x-b3-traceid`, `x-b3-spanid`,
 * `x-b3-parentspanid`, `x-b3-sampled`, `x-b3-flags`), else B3 single (`b3`), else W3C
 * `traceparent` (`tracestate` is forwarded untouched).
 *
 * Sampling (Envoy: HTTP connection manager decision, then the Zipkin driver):
 *   - an incoming sampled flag (`x-b3-sampled`, `b3`'s flag, traceparent's flags) wins, both ways;
 *     `x-b3-flags: 1` / `b3` flag `d` (debug) force sampling;
 *   - else `x-client-trace-id` present: sampled (Envoy's client_sampling, 100%);
 *   - else a random draw at `sampling` percent (Istio `defaultConfig.tracing.sampling`, default 1).
 *
 * Spans (Envoy defaults, shared_span_context true, 128-bit trace ids): outbound = CLIENT span,
 * a new id, parent = the incoming span id; inbound = SERVER span sharing the incoming span id
 * and parent (Zipkin's shared client/server span), a new id when nothing arrived. The upstream
 * gets the trace as both B3 and traceparent with this hop's span id, sampled or not.
 *
 * Cost: nothing when tracing is off. Unsampled requests pay the header pass and one span id;
 * only sampled ones keep their context for the exporter.
 */
import { randomFillSync } from 'node:crypto';

export const SpanKind = { client: 0, server: 1 } as const;

// Header names, by length, so the scan compares lengths before strings.
const TRACEID = 'x-b3-traceid';
const SPANID = 'x-b3-spanid';
const PARENT = 'x-b3-parentspanid';
const SAMPLED = 'x-b3-sampled';
const FLAGS = 'x-b3-flags';
const B3 = 'b3';
const TRACEPARENT = 'traceparent';
const CLIENT_TRACE_ID = 'x-client-trace-id';

/** Random ids from a refilled pool: no syscall per id, one flat string per id. */
const POOL = Buffer.allocUnsafe(4096);
let poolAt = POOL.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const s = POOL.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}

const ZERO16 = '0000000000000000';

/** 64-bit id as 16 lowercase hex characters (never all zeros). */
export function newSpanId(): string {
  const s = randomHex(8);
  return s === ZERO16 ? newSpanId() : s;
}

/** 128-bit trace id, 32 hex characters. */
export function newTraceId(): string {
  const s = randomHex(16);
  return s.startsWith(ZERO16) && s.endsWith(ZERO16) ? newTraceId() : s;
}

function isHex(s: string, lengths: 16 | 32 | 0): boolean {
  const n = s.length;
  if (lengths === 16 ? n !== 16 : lengths === 32 ? n !== 32 : n !== 16 && n !== 32) return false;
  let zero = true;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
    if (c !== 0x30) zero = false;
  }
  return !zero;
}

/** `00-<32 hex trace>-<16 hex span>-<2 hex flags>` with a valid, non-zero trace and span. */
function parseTraceparent(v: string, into: TraceState): boolean {
  if (v.length < 55 || v.charCodeAt(2) !== 0x2d || v.charCodeAt(35) !== 0x2d || v.charCodeAt(52) !== 0x2d)
    return false;
  const version = v.slice(0, 2);
  if (version === 'ff' || (version === '00' && v.length !== 55)) return false;
  const trace = v.slice(3, 35).toLowerCase();
  const span = v.slice(36, 52).toLowerCase();
  if (!isHex(trace, 32) || !isHex(span, 16)) return false;
  const flags = Number.parseInt(v.slice(53, 55), 16);
  if (Number.isNaN(flags)) return false;
  into.traceId = trace;
  into.parentSpan = span;
  into.grandParent = '';
  into.sampled = (flags & 1) === 1 ? 1 : 0;
  return true;
}

/** `b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]` or just `{sampling}`. */
function parseB3Single(v: string, into: TraceState): boolean {
  if (v.length === 1) {
    into.sampled = v === '0' ? 0 : v === '1' || v === 'd' ? 1 : -1;
    return false;
  }
  const parts = v.toLowerCase().split('-');
  if (parts.length < 2 || !isHex(parts[0]!, 0) || !isHex(parts[1]!, 16)) return false;
  into.traceId = parts[0]!;
  into.parentSpan = parts[1]!;
  into.grandParent = parts.length > 3 && isHex(parts[3]!, 16) ? parts[3]! : '';
  const s = parts[2];
  into.sampled = s === undefined ? -1 : s === '0' ? 0 : s === '1' || s === 'd' ? 1 : -1;
  return true;
}

function sampledValue(v: string): number {
  if (v === '1' || v === 'true' || v === 'd') return 1;
  if (v === '0' || v === 'false') return 0;
  return -1;
}

/**
 * The trace of one request as it arrived, then as this hop continues it. Reused: the tracer
 * fills one scratch instance synchronously (see Tracer.begin); a sampled request copies it
 * into its RequestContext.
 */
export class TraceState {
  /** Incoming trace id ('' = none arrived). */
  traceId = '';
  /** Incoming span id: our parent (client span) or our shared id (server span). */
  parentSpan = '';
  /** Incoming parent span id (x-b3-parentspanid): the server span's parent when shared. */
  grandParent = '';
  /** -1 = no decision arrived, 0 / 1 = the caller's decision. */
  sampled = -1;
  clientTraceId = false;

  reset(): this {
    this.traceId = '';
    this.parentSpan = '';
    this.grandParent = '';
    this.sampled = -1;
    this.clientTraceId = false;
    return this;
  }
}

const scratch = new TraceState();

/**
 * Reads the incoming trace of `raw` into the shared scratch state (valid until the next call).
 * Precedence as Envoy's Zipkin extractor: B3 multi, B3 single, then traceparent.
 */
export function extractTrace(raw: readonly string[]): TraceState {
  const t = scratch.reset();
  let traceId = '';
  let spanId = '';
  let parent = '';
  let sampled = '';
  let flags = '';
  let b3 = '';
  let tp = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const len = name.length;
    if (len !== 2 && len !== 10 && len !== 11 && len !== 12 && len !== 17) continue;
    const c = name.charCodeAt(0) | 0x20;
    if (c !== 0x78 && c !== 0x62 && c !== 0x74) continue; // x, b, t
    const lower = name.toLowerCase();
    const v = raw[i + 1]!;
    if (lower === TRACEID) traceId = v.toLowerCase();
    else if (lower === SPANID) spanId = v.toLowerCase();
    else if (lower === PARENT) parent = v.toLowerCase();
    else if (lower === SAMPLED) sampled = v.toLowerCase();
    else if (lower === FLAGS) flags = v;
    else if (lower === B3) b3 = v;
    else if (lower === TRACEPARENT) tp = v;
    else if (lower === CLIENT_TRACE_ID) t.clientTraceId = v !== '';
  }
  if (traceId !== '' && isHex(traceId, 0) && isHex(spanId, 16)) {
    t.traceId = traceId;
    t.parentSpan = spanId;
    t.grandParent = isHex(parent, 16) ? parent : '';
  } else if (b3 !== '') {
    parseB3Single(b3, t);
  } else if (tp !== '') {
    parseTraceparent(tp, t);
  }
  if (sampled !== '') {
    const s = sampledValue(sampled);
    if (s >= 0) t.sampled = s;
  }
  if (flags === '1') t.sampled = 1;
  return t;
}

/** Whether this hop samples: the caller's decision, else x-client-trace-id, else a draw. */
export function decideSampled(t: TraceState, samplingPct: number): boolean {
  if (t.sampled >= 0) return t.sampled === 1;
  if (t.clientTraceId) return true;
  return samplingPct >= 100 || (samplingPct > 0 && Math.random() * 100 < samplingPct);
}

const B3_NAMES_LEN = new Set([2, 10, 11, 12, 17]);

/** Whether `name` is a trace header this hop replaces (tracestate is kept). */
function isTraceHeader(name: string): boolean {
  if (!B3_NAMES_LEN.has(name.length)) return false;
  const lower = name.toLowerCase();
  return (
    lower === TRACEID ||
    lower === SPANID ||
    lower === PARENT ||
    lower === SAMPLED ||
    lower === FLAGS ||
    lower === B3 ||
    lower === TRACEPARENT
  );
}

/**
 * Replaces the trace headers in the upstream request `headers` (flat, in place) with this
 * hop's context: B3 multi-header and traceparent (128-bit trace ids are padded for W3C).
 */
export function injectTrace(
  headers: string[],
  traceId: string,
  spanId: string,
  parentId: string,
  sampled: boolean,
): void {
  let w = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (isTraceHeader(name)) continue;
    headers[w++] = name;
    headers[w++] = headers[i + 1]!;
  }
  headers.length = w;
  headers.push(TRACEID, traceId, SPANID, spanId);
  if (parentId !== '') headers.push(PARENT, parentId);
  headers.push(
    SAMPLED,
    sampled ? '1' : '0',
    TRACEPARENT,
    `00-${traceId.length === 16 ? ZERO16 + traceId : traceId}-${spanId}-${sampled ? '01' : '00'}`,
  );
}
