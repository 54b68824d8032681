/**
 * Responses the proxy produces itself (no route, no upstream, overflow, timeouts, faults,
 * redirects, direct responses, CORS preflights), with Envoy's status codes and bodies.
 */
import type { Redirect } from '../../tables/index.js';
import { grpcLocalHeaders, httpToGrpcStatus } from '../http2/grpc.js';
import type { CompiledCors } from '../router/compiled.js';
import type { RequestView } from '../router/request-view.js';
import { splitAuthority } from '../router/request-view.js';
import type { Downstream } from './downstream.js';

const TEXT = 'text/plain';

/**
 * The gRPC status a local reply of HTTP `status` carries for this request, or -1 when it goes
 * out as plain HTTP. Like Envoy: error replies to gRPC requests become trailers-only gRPC
 * replies (HTTP 200) with `grpcStatus` if given, else the mapped status.
 */
export function localGrpcStatus(res: Downstream, status: number, grpcStatus: number): number {
  if (res.grpc !== true) return -1;
  if (grpcStatus >= 0) return grpcStatus;
  return status >= 400 ? httpToGrpcStatus(status) : -1;
}

/**
 * Writes a complete local response; returns the body length for metrics. A gRPC request gets
 * a trailers-only reply instead (see localGrpcStatus; the response code is then 200).
 */
export function writeLocal(
  res: Downstream,
  status: number,
  body: string | Buffer | null,
  extra: string[] | null,
  grpcStatus = -1,
): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  if (res.grpc === true) {
    const g = localGrpcStatus(res, status, grpcStatus);
    if (g >= 0) {
      res.writeHead(200, grpcLocalHeaders(g, body === null ? null : String(body), extra));
      res.end();
      return 0;
    }
  }
  const buf = body === null ? null : typeof body === 'string' ? Buffer.from(body) : body;
  const headers = extra ?? [];
  if (buf !== null && buf.length > 0)
    headers.push('content-type', TEXT, 'content-length', String(buf.length));
  else headers.push('content-length', '0');
  res.writeHead(status, headers);
  res.end(buf ?? undefined);
  return buf?.length ?? 0;
}

/** Location for an Istio HTTPRedirect, from the request as received. */
export function redirectLocation(r: Redirect, view: RequestView, prefixLength: number): string {
  const scheme = r.scheme ?? 'http';
  const { host: reqHost, port: reqPort } = splitAuthority(view.authority);
  const host = r.host ?? reqHost;
  let port = '';
  if (r.port !== undefined) port = `:${r.port}`;
  else if (r.host === undefined && r.scheme === undefined && reqPort !== undefined) port = `:${reqPort}`;
  let path = view.path;
  if (r.path !== undefined) path = r.path;
  else if (r.pathPrefix !== undefined) path = r.pathPrefix + view.path.slice(prefixLength);
  const query = r.stripQuery || !view.query ? '' : `?${view.query}`;
  return `${scheme}://${host}${port}${path}${query}`;
}

/** The allowed origin for a CORS request, or null when the origin is not allowed. */
export function corsOrigin(cors: CompiledCors, origin: string): boolean {
  for (const m of cors.origins) if (m.test(origin)) return true;
  return false;
}

/** Headers answering a preflight (OPTIONS with Access-Control-Request-Method). */
export function preflightHeaders(cors: CompiledCors, origin: string): string[] {
  const h = ['access-control-allow-origin', origin];
  if (cors.allowMethods) h.push('access-control-allow-methods', cors.allowMethods);
  if (cors.allowHeaders) h.push('access-control-allow-headers', cors.allowHeaders);
  if (cors.maxAge) h.push('access-control-max-age', cors.maxAge);
  if (cors.allowCredentials) h.push('access-control-allow-credentials', 'true');
  if (cors.exposeHeaders) h.push('access-control-expose-headers', cors.exposeHeaders);
  return h;
}

/** Headers added to a normal (non-preflight) response for an allowed origin. */
export function appendCorsHeaders(cors: CompiledCors, origin: string, headers: string[]): void {
  headers.push('access-control-allow-origin', origin);
  if (cors.allowCredentials) headers.push('access-control-allow-credentials', 'true');
  if (cors.exposeHeaders) headers.push('access-control-expose-headers', cors.exposeHeaders);
}
