/**
 * gRPC knowledge the proxy needs: status codes, the HTTP <-> gRPC status mappings Envoy uses
 * (grpc/doc/http-grpc-status-mapping.md), reading grpc-status from flat header arrays, and
 * the trailers-only local reply (HTTP 200, grpc-status/grpc-message in the only HEADERS).
 */
import { type CompiledRetry, RetryOnBit } from '../router/compiled.js';

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function httpToGrpcStatus(http: number): number {
  switch (http) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

/** Envoy's Grpc::Utility::grpcToHttpStatus (for a gRPC-only fault hitting a non-gRPC request). */
export function grpcToHttpStatus(grpc: number): number {
  switch (grpc) {
    case 0:
      return 200;
    case 1:
      return 499;
    case 3:
    case 9:
    case 11:
      return 400;
    case 4:
      return 504;
    case 5:
      return 404;
    case 6:
    case 10:
      return 409;
    case 7:
      return 403;
    case 8:
      return 429;
    case 12:
      return 501;
    case 14:
      return 503;
    case 16:
      return 401;
    default:
      return 500;
  }
}

/** True for `application/grpc` and `application/grpc+proto` etc. (not grpc-web). */
export function isGrpcContentType(ct: string | undefined): boolean {
  return (
    ct !== undefined &&
    ct.length >= 16 &&
    ct.charCodeAt(12) === 0x67 && // fast reject before the full compare
    ct.slice(0, 16).toLowerCase() === 'application/grpc' &&
    (ct.length === 16 || ct.charCodeAt(16) === 0x2b || ct.charCodeAt(16) === 0x3b)
  );
}

/** grpc-status in a flat header array (names as strings or latin1 Buffers); -1 when absent. */
export function grpcStatusOf(raw: readonly (string | Buffer)[] | null): number {
  if (raw === null) return -1;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length !== 11) continue;
    const name = typeof n === 'string' ? n : n.toString('latin1');
    if (name.toLowerCase() !== 'grpc-status') continue;
    const v = raw[i + 1]!;
    const code = Number(typeof v === 'string' ? v : v.toString('latin1'));
    return Number.isInteger(code) && code >= 0 ? code : 2;
  }
  return -1;
}

const GRPC_RETRY: ReadonlyArray<readonly [number, number]> = [
  [GrpcStatus.CANCELLED, RetryOnBit.grpcCancelled],
  [GrpcStatus.DEADLINE_EXCEEDED, RetryOnBit.grpcDeadlineExceeded],
  [GrpcStatus.INTERNAL, RetryOnBit.grpcInternal],
  [GrpcStatus.RESOURCE_EXHAUSTED, RetryOnBit.grpcResourceExhausted],
  [GrpcStatus.UNAVAILABLE, RetryOnBit.grpcUnavailable],
];

/** Envoy retry-on gRPC conditions: the response's grpc-status is one the policy lists. */
export function retriableGrpc(r: CompiledRetry, grpcStatus: number): boolean {
  for (const [code, bit] of GRPC_RETRY) if (code === grpcStatus) return (r.on & bit) !== 0;
  return false;
}

/** Percent-encodes grpc-message (gRPC spec: printable ASCII except '%' stays as is). */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out +=
      b >= 0x20 && b <= 0x7e && b !== 0x25
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Headers of a trailers-only gRPC reply (sent as one HEADERS frame with END_STREAM); `extra`
 * are the local reply's own headers (e.g. x-envoy-overloaded).
 */
export function grpcLocalHeaders(
  grpcStatus: number,
  message: string | null,
  extra: string[] | null,
): string[] {
  const h = extra ?? [];
  h.push('content-type', 'application/grpc', 'grpc-status', String(grpcStatus));
  if (message) h.push('grpc-message', encodeGrpcMessage(message));
  return h;
}
