/**
 * Test harness: real node:http upstream servers and a real SidecarProxy on loopback
 * ephemeral ports, plus a tiny client. No mocked sockets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import type { Endpoint, ProxyTables, Route } from '../../src/tables/index.js';

export interface Upstream {
  name: string;
  port: number;
  server: http.Server;
  /** Requests seen: method, url, headers. */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

export type UpstreamBehaviour = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** An upstream answering `200 <name>` unless a behaviour says otherwise. */
export async function startUpstream(name: string, behaviour?: UpstreamBehaviour): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (behaviour) return behaviour(req, res, body);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(name);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export function ep(u: { port: number }, extra: Partial<Endpoint> = {}): Endpoint {
  return { address: '127.0.0.1', port: u.port, ...extra };
}

/**
 * Tables with one outbound listener (routeByPort, explicit proxy) and route config "9080"
 * serving `reviews` with the given routes; clusters are named outbound|9080|<subset>|reviews...
 */
export function tables(
  routes: Route[],
  clusters: Record<string, Endpoint[]>,
  extra: Partial<ProxyTables> = {},
): ProxyTables {
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: 'v1',
    node: { name: 'productpage-v1', namespace: 'shop', app: 'productpage', version: 'v1' },
    listeners: [
      {
        name: 'virtualOutbound',
        direction: 'outbound',
        port: 15001,
        protocol: 'http',
        routeByPort: true,
        explicitProxy: true,
      },
    ],
    routeConfigs: [
      {
        name: '9080',
        port: 9080,
        virtualHosts: [
          {
            name: 'reviews.shop.svc.cluster.local:9080',
            domains: [
              'reviews',
              'reviews:9080',
              'reviews.shop.svc.cluster.local',
              'reviews.shop.svc.cluster.local:9080',
            ],
            routes,
          },
        ],
      },
    ],
    clusters: Object.keys(clusters).map((name) => ({
      name,
      service: { host: 'reviews.shop.svc.cluster.local', name: 'reviews', namespace: 'shop' },
    })),
    endpoints: clusters,
    ...extra,
  };
}

/** The inbound cluster of the sidecar-side tables below. */
export const INBOUND_CLUSTER = 'inbound|9080||';

/**
 * Tables of a server-side sidecar (reviews-v1): the 15006 inbound listener sends everything to
 * the app `upstream`; `extra` adds sections (security, ...).
 */
export function inboundTables(
  upstream: Upstream,
  version = 's1',
  extra: Partial<ProxyTables> = {},
): ProxyTables {
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version,
    node: { name: 'reviews-v1', namespace: 'shop', app: 'reviews', version: 'v1' },
    listeners: [
      {
        name: 'virtualInbound',
        direction: 'inbound',
        port: 15006,
        protocol: 'http',
        routeConfig: 'inbound|9080',
      },
    ],
    routeConfigs: [
      {
        name: 'inbound|9080',
        virtualHosts: [
          {
            name: 'inbound|http|9080',
            domains: ['*'],
            routes: [{ name: 'default', forward: { clusters: [{ cluster: INBOUND_CLUSTER, weight: 1 }] } }],
          },
        ],
      },
    ],
    clusters: [{ name: INBOUND_CLUSTER }],
    endpoints: { [INBOUND_CLUSTER]: [ep(upstream)] },
    ...extra,
  };
}

export const C1 = 'outbound|9080|v1|reviews.shop.svc.cluster.local';
export const C2 = 'outbound|9080|v2|reviews.shop.svc.cluster.local';

export async function startProxy(t: unknown): Promise<SidecarProxy> {
  const proxy = new SidecarProxy({
    adminPort: 0,
    statsPort: 0,
    healthPort: 0,
    serviceAddress: '127.0.0.1',
    listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0 } },
    logger: createLogger('error'),
  });
  await proxy.start();
  const r = await proxy.applyTables(t);
  if (!r.ok) throw new Error(`tables rejected: ${JSON.stringify(r.errors)}`);
  return proxy;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** Sends a request to the proxy's outbound listener; `target` is the Host (or absolute URL). */
export function send(
  port: number,
  opts: {
    path?: string;
    host?: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    absolute?: boolean;
  } = {},
): Promise<Reply> {
  const host = opts.host ?? 'reviews:9080';
  const path = opts.absolute ? `http://${host}${opts.path ?? '/'}` : (opts.path ?? '/');
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        agent,
        headers: { host, ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - start,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function getText(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const r = await send(port, { path, host: '127.0.0.1', method });
  return { status: r.status, body: r.body };
}

export function outboundPort(p: SidecarProxy): number {
  const port = p.listenerPort('virtualOutbound');
  if (port === undefined) throw new Error('no outbound listener');
  return port;
}

/** A local port nobody listens on (bound then closed). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
