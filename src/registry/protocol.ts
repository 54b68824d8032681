/**
 * Protocol selection as Istio does it: `appProtocol` first, then the port name prefix
 * (`http`, `http-web`, `grpc-api`, ...), else UNSUPPORTED (sniffed by the proxy).
 */
import type { Protocol } from './types.js';

const BY_NAME: Record<string, Protocol> = {
  http: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  https: 'HTTPS',
  tls: 'TLS',
  tcp: 'TCP',
  mongo: 'MONGO',
  redis: 'REDIS',
  mysql: 'MYSQL',
  udp: 'UDP',
  h2c: 'HTTP2',
};

/** Kubernetes-defined appProtocol values (KEP-3726) Istio understands. */
const APP_PROTOCOL: Record<string, Protocol> = {
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/** Parses a protocol name case-insensitively (`HTTP`, `grpc`); undefined when unknown. */
export function parseProtocol(value: string | undefined): Protocol | undefined {
  if (!value) return undefined;
  return APP_PROTOCOL[value] ?? BY_NAME[value.toLowerCase()];
}

/**
 * Istio's port-name convention: `<protocol>[-<suffix>]`. `appProtocol` wins when set. The
 * Kubernetes `protocol: UDP` makes the port UDP whatever its name says.
 */
export function protocolOfPort(name: string | undefined, appProtocol?: string, l4?: string): Protocol {
  if (l4 === 'UDP') return 'UDP';
  if (l4 === 'SCTP') return 'UNSUPPORTED';
  const fromApp = parseProtocol(appProtocol);
  if (fromApp) return fromApp;
  if (!name) return 'UNSUPPORTED';
  const lower = name.toLowerCase();
  // grpc-web must be checked before the `<proto>-` split would read it as grpc.
  if (lower === 'grpc-web' || lower.startsWith('grpc-web-')) return 'GRPC-WEB';
  const dash = lower.indexOf('-');
  return BY_NAME[dash === -1 ? lower : lower.slice(0, dash)] ?? 'UNSUPPORTED';
}

/** Served by the HTTP connection manager (route configs). */
export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}

/** Istio's IsHTTPOrSniffed: ports that get virtual hosts in the outbound route configs. */
export function isHttpOrSniffed(p: Protocol): boolean {
  return isHttpProtocol(p) || p === 'UNSUPPORTED';
}

/** Upstream protocol for the cluster: HTTP/2 for http2/grpc, else HTTP/1.1. */
export function upstreamProtocolOf(p: Protocol): 'http1' | 'http2' {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB' ? 'http2' : 'http1';
}
