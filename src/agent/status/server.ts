/**
 * The agent's status server on 15020 (Istio's pilot-agent status port):
 *   GET  /healthz/ready                      the proxy's readiness (what 15021 reports)
 *   GET  /app-health/<container>/<kind>      runs the app's original probe (rewritten at injection)
 *   POST /quitquitquit                       drains and stops the proxy (Jobs: the app is done)
 *   GET  /stats/prometheus                   proxy metrics, merged with the app's when configured
 * Kubelet reaches it on the pod IP; /quitquitquit is accepted from inside the pod only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'winston';
import { runProbe } from './probe.js';
import type { AppProber } from './probers.js';

export interface StatusTarget {
  isReady(): boolean;
  /** Prometheus text of the proxy. */
  prometheus(): string;
  /** Drain and exit (the caller decides how long draining may take). */
  quit(): void;
}

/** Where the app's own metrics are (Istio: ISTIO_PROMETHEUS_ANNOTATIONS, from prometheus.io/* annotations). */
export interface AppMetrics {
  port: number;
  path: string;
}

export interface StatusServerOptions {
  target: StatusTarget;
  probers: ReadonlyMap<string, AppProber>;
  log: Logger;
  /** Host the app probes dial when the probe names none (default 127.0.0.1). */
  appHost?: string;
  appMetrics?: AppMetrics | null;
  /** Extra addresses (besides loopback) allowed to POST /quitquitquit, e.g. the pod IP. */
  localAddresses?: readonly string[];
}

type Reply = { status: number; body: string; type?: string };

const PROM_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class StatusServer {
  private server: http.Server | null = null;
  private quitting = false;

  constructor(private readonly opts: StatusServerOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async listen(port: number, host: string): Promise<number> {
    const server = http.createServer((req, res) => {
      this.handle(req)
        .catch(
          (err: unknown): Reply => ({
            status: 500,
            body: `${err instanceof Error ? err.message : String(err)}\n`,
          }),
        )
        .then((r) => {
          res.writeHead(r.status, {
            'content-type': r.type ?? 'text/plain; charset=utf-8',
            'content-length': Buffer.byteLength(r.body),
          });
          res.end(r.body);
        });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return this.port;
  }

  close(): void {
    this.server?.close();
    this.server?.closeAllConnections();
  }

  private async handle(req: http.IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://status');
    const path = url.pathname;
    if (path === '/healthz/ready') {
      return this.opts.target.isReady() ? { status: 200, body: '' } : { status: 503, body: 'not ready\n' };
    }
    if (path.startsWith('/app-health/')) return this.appHealth(path, req);
    if (path === '/quitquitquit') return this.quit(req);
    if (path === '/stats/prometheus') return { status: 200, type: PROM_TYPE, body: await this.metrics() };
    return { status: 404, body: 'not found\n' };
  }

  private async appHealth(path: string, req: http.IncomingMessage): Promise<Reply> {
    const prober = this.opts.probers.get(path);
    if (prober === undefined) return { status: 404, body: `no app probe registered for ${path}\n` };
    const ua = req.headers['user-agent'];
    const r = await runProbe(prober, {
      defaultHost: this.opts.appHost ?? '127.0.0.1',
      ...(ua ? { forwardHeaders: { 'user-agent': ua } } : {}),
    });
    if (r.status !== 200 && this.opts.log.isDebugEnabled())
      this.opts.log.debug(`app probe ${path} failed: ${r.detail}`);
    return { status: r.status, body: `${r.detail}\n` };
  }

  private quit(req: http.IncomingMessage): Reply {
    if (req.method !== 'POST') return { status: 405, body: 'use POST\n' };
    const from = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const local =
      from === '::1' || from.startsWith('127.') || (this.opts.localAddresses ?? []).includes(from);
    if (!local) return { status: 403, body: 'only allowed from inside the pod\n' };
    if (!this.quitting) {
      this.quitting = true;
      this.opts.log.info('POST /quitquitquit: draining and exiting');
      setImmediate(() => this.opts.target.quit());
    }
    return { status: 200, body: 'OK\n' };
  }

  /** Proxy metrics, then the app's (when configured and reachable within 1 s). */
  private async metrics(): Promise<string> {
    const own = this.opts.target.prometheus();
    const app = this.opts.appMetrics;
    if (!app) return own;
    const appText = await scrape(this.opts.appHost ?? '127.0.0.1', app).catch((err: unknown) => {
      if (this.opts.log.isDebugEnabled()) this.opts.log.debug(`app metrics scrape failed: ${String(err)}`);
      return '';
    });
    return appText ? `${own}${own.endsWith('\n') ? '' : '\n'}${appText}` : own;
  }
}

function scrape(host: string, m: AppMetrics): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: m.port, path: m.path, timeout: 1000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(chunks).toString('utf8'))
          : reject(new Error(`HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** ISTIO_PROMETHEUS_ANNOTATIONS: {"scrape":"true","path":"/metrics","port":"9090"}; null when off. */
export function appMetricsFromEnv(raw: string | undefined): AppMetrics | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as { scrape?: unknown; path?: unknown; port?: unknown };
    if (String(v.scrape) !== 'true') return null;
    const port = Number(v.port);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) return null;
    return { port, path: typeof v.path === 'string' && v.path ? v.path : '/metrics' };
  } catch {
    return null;
  }
}
