/**
 * Admin (15000), Prometheus (15090) and health (15021) endpoints. Handlers are plain
 * functions over an AdminTarget, so they know nothing of how the proxy is built.
 * Admin is meant to be bound to 127.0.0.1 (pod-local, as Envoy's).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLogLevel, type LogLevel } from '../log.js';

export interface AdminTarget {
  configDump(): unknown;
  clustersText(): string;
  clustersJson(): unknown;
  /** The workload certificate, in the shape of Envoy's /certs. */
  certs(): unknown;
  statsText(): string;
  prometheus(): string;
  isReady(): boolean;
  logLevel(): string;
  setLogLevel(level: LogLevel): void;
  quit(): void;
}

type Reply = { status: number; type: string; body: string };

const text = (status: number, body: string): Reply => ({ status, type: 'text/plain; charset=utf-8', body });
const json = (value: unknown): Reply => ({
  status: 200,
  type: 'application/json',
  body: `${JSON.stringify(value, null, 2)}\n`,
});

export function adminRoute(t: AdminTarget, method: string, url: URL): Reply {
  switch (url.pathname) {
    case '/':
      return text(200, 'config_dump clusters certs stats stats/prometheus ready logging quitquitquit\n');
    case '/config_dump':
      return json(t.configDump());
    case '/clusters':
      return url.searchParams.get('format') === 'json' ? json(t.clustersJson()) : text(200, t.clustersText());
    case '/certs':
      return json(t.certs());
    case '/stats':
      return text(200, t.statsText());
    case '/stats/prometheus':
      return { status: 200, type: 'text/plain; version=0.0.4', body: t.prometheus() };
    case '/ready':
      return t.isReady() ? text(200, 'LIVE\n') : text(503, 'PRE_INITIALIZING\n');
    case '/logging': {
      const level = url.searchParams.get('level');
      if (level === null) return text(200, `active loggers:\n  proxy: ${t.logLevel()}\n`);
      if (method !== 'POST') return text(405, 'use POST to change the log level\n');
      if (!isLogLevel(level)) return text(400, `unknown level "${level}" (error, warn, info, debug)\n`);
      t.setLogLevel(level);
      return text(200, `active loggers:\n  proxy: ${level}\n`);
    }
    case '/quitquitquit':
      if (method !== 'POST') return text(405, 'use POST\n');
      setImmediate(() => t.quit());
      return text(200, 'OK\n');
    default:
      return text(404, 'not found\n');
  }
}

export function prometheusRoute(t: AdminTarget, _method: string, url: URL): Reply {
  if (url.pathname === '/stats/prometheus') return adminRoute(t, 'GET', url);
  return text(404, 'not found\n');
}

export function healthRoute(t: AdminTarget, _method: string, url: URL): Reply {
  if (url.pathname === '/healthz/ready') return t.isReady() ? text(200, '') : text(503, 'not ready\n');
  return text(404, 'not found\n');
}

/** Starts a small server answering with `route`; resolves with the bound port. */
export async function serve(
  route: (t: AdminTarget, method: string, url: URL) => Reply,
  target: AdminTarget,
  host: string,
  port: number,
): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((req, res) => {
    let reply: Reply;
    try {
      reply = route(target, req.method ?? 'GET', new URL(req.url ?? '/', 'http://admin'));
    } catch (err) {
      reply = text(500, `${err instanceof Error ? err.message : String(err)}\n`);
    }
    res.writeHead(reply.status, {
      'content-type': reply.type,
      'content-length': Buffer.byteLength(reply.body),
    });
    res.end(reply.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
