/**
 * A small Kubernetes REST client over node:https, shared by the controller (informers,
 * publisher, leases) and the sidecar agent (which must not pay @kubernetes/client-node's
 * ~1 s import). Credentials are re-read per request, so rotated projected tokens just work.
 * Errors are KubeApiError with the HTTP `code` (src/controller/kube.ts isApiError reads it).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';

export interface KubeRestOptions {
  /** https://host:port (no trailing slash). */
  server: string;
  /** PEM of the cluster CA; `caFile` is read once. */
  ca?: string | Buffer;
  caFile?: string;
  /** Bearer token, or a file holding it (re-read every `tokenTtlMs`, for projected tokens). */
  token?: string;
  tokenFile?: string;
  /** Extra TLS/auth options per request (client certificates from a kubeconfig). */
  requestOptions?: () => Promise<https.RequestOptions>;
  insecureSkipTLSVerify?: boolean;
  /** Timeout of non-watch requests (default 15 s). */
  timeoutMs?: number;
  userAgent?: string;
}

/** An API error: `code` is the HTTP status (0 = the apiserver could not be reached). */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly body?: unknown,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface KubeList<T = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

type Query = Record<string, string | number | boolean | undefined>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

function errorFromBody(code: number, text: string): KubeApiError {
  let body: unknown = text;
  let message = text.slice(0, 300) || http.STATUS_CODES[code] || 'error';
  let reason: string | undefined;
  try {
    body = JSON.parse(text);
    const b = body as { message?: unknown; reason?: unknown };
    if (typeof b.message === 'string') message = b.message;
    if (typeof b.reason === 'string') reason = b.reason;
  } catch {
    /* not JSON */
  }
  return new KubeApiError(code, message, body, reason);
}

export class KubeRest {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly ca: string | Buffer | undefined;
  private token: { value: string; readAt: number } | undefined;

  constructor(private readonly opts: KubeRestOptions) {
    this.url = new URL(opts.server);
    const isHttps = this.url.protocol === 'https:';
    this.agent = isHttps
      ? new https.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY })
      : new http.Agent({ keepAlive: true });
    this.ca = opts.ca ?? (opts.caFile ? readFileSync(opts.caFile) : undefined);
  }

  get server(): string {
    return this.opts.server;
  }

  private bearer(): string | undefined {
    if (this.opts.token) return this.opts.token;
    if (!this.opts.tokenFile) return undefined;
    const now = Date.now();
    if (!this.token || now - this.token.readAt > 60_000)
      this.token = { value: readFileSync(this.opts.tokenFile, 'utf8').trim(), readAt: now };
    return this.token.value;
  }

  private async options(method: string, path: string, headers: Record<string, string>) {
    const extra = this.opts.requestOptions ? await this.opts.requestOptions() : {};
    const token = this.bearer();
    const base = this.url.pathname.replace(/\/$/, '');
    const o: https.RequestOptions = {
      ...extra,
      protocol: this.url.protocol,
      hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: this.url.port || (this.url.protocol === 'https:' ? 443 : 80),
      method,
      path: base + path,
      agent: this.agent,
      headers: {
        accept: 'application/json',
        'user-agent': this.opts.userAgent ?? 'isthmus',
        ...(extra.headers as Record<string, string> | undefined),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
    };
    if (this.ca && !o.ca) o.ca = this.ca;
    if (this.opts.insecureSkipTLSVerify) o.rejectUnauthorized = false;
    return o;
  }

  private send(o: https.RequestOptions, body: string | undefined, timeoutMs: number, signal?: AbortSignal) {
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const mod = this.url.protocol === 'https:' ? https : http;
      const req = mod.request({ ...o, ...(signal ? { signal } : {}) }, (res) => {
        // Consumers attach their own handlers; this one keeps a late socket error (apiserver
        // gone mid-body) from becoming an uncaught exception before they do.
        res.on('error', () => undefined);
        resolve(res);
      });
      req.setTimeout(timeoutMs, () => req.destroy(new KubeApiError(0, `timeout after ${timeoutMs} ms`)));
      req.on('error', (err) =>
        reject(
          err instanceof KubeApiError ? err : new KubeApiError(0, `${o.method} ${o.path}: ${err.message}`),
        ),
      );
      req.end(body);
    });
  }

  /** One request; resolves with the parsed JSON body, rejects with KubeApiError. */
  async request<T = unknown>(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown; contentType?: string; timeoutMs?: number } = {},
  ): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const o = await this.options(method, withQuery(path, opts.query), headers);
    const res = await this.send(o, body, opts.timeoutMs ?? this.opts.timeoutMs ?? 15_000);
    const chunks: Buffer[] = [];
    try {
      for await (const c of res) chunks.push(c as Buffer);
    } catch (err) {
      throw new KubeApiError(0, `${method} ${path}: ${(err as Error).message}`);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) throw errorFromBody(code, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T = KubeObject>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, query ? { query } : {});
  }
  create<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }
  replace<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }
  mergePatch<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
  }
  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }

  /**
   * Streams a watch. Resolves when the server ends it (timeoutSeconds or a closed
   * connection), rejects on a non-2xx answer (KubeApiError with its code) or a transport
   * error. `idleMs` bounds silence on the connection (a half-open socket is never noticed).
   */
  async watch(
    path: string,
    query: Query,
    onEvent: (e: WatchEvent) => void,
    opts: { signal?: AbortSignal; idleMs?: number } = {},
  ): Promise<void> {
    const o = await this.options('GET', withQuery(path, { ...query, watch: 'true' }), {});
    const res = await this.send(o, undefined, opts.idleMs ?? 330_000, opts.signal);
    const code = res.statusCode ?? 0;
    if (code < 200 || code >= 300) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw errorFromBody(code, Buffer.concat(chunks).toString('utf8'));
    }
    res.socket?.setTimeout(opts.idleMs ?? 330_000, () => res.destroy(new Error('watch idle timeout')));
    await new Promise<void>((resolve, reject) => {
      let failed: Error | undefined;
      const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
      lines.on('line', (line) => {
        if (!line.trim()) return;
        let e: WatchEvent;
        try {
          e = JSON.parse(line) as WatchEvent;
        } catch {
          return;
        }
        try {
          onEvent(e);
        } catch (err) {
          failed = err as Error;
          lines.close();
          res.destroy();
        }
      });
      const onError = (err: Error) => {
        failed ??= err;
      };
      res.on('error', onError);
      // readline re-emits input errors on itself: unhandled, they would be thrown.
      lines.on('error', onError);
      res.on('aborted', () => {
        failed ??= new Error('watch connection aborted');
      });
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        if (failed instanceof KubeApiError) reject(failed);
        else if (failed) reject(new KubeApiError(0, `watch ${path}: ${failed.message}`));
        else if (!res.complete) reject(new KubeApiError(0, `watch ${path}: connection closed`));
        else resolve();
      };
      // readline closes on a clean end (after the last line); a destroyed response (socket
      // reset, abort) never ends, only closes.
      lines.on('close', settle);
      res.on('close', () => {
        lines.close();
        settle();
      });
    });
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }
}

/** Minimal structural type of client-node's KubeConfig (so this file does not import it). */
export interface KubeConfigLike {
  getCurrentCluster(): { server: string; skipTLSVerify?: boolean } | null;
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** A KubeRest using a kubeconfig's cluster and user (tokens, client certs, exec plugins). */
export function restFromKubeConfig(kc: KubeConfigLike, userAgent?: string): KubeRest {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  let cached: { at: number; opts: https.RequestOptions } | undefined;
  return new KubeRest({
    server: cluster.server.replace(/\/$/, ''),
    ...(cluster.skipTLSVerify ? { insecureSkipTLSVerify: true } : {}),
    ...(userAgent ? { userAgent } : {}),
    requestOptions: async () => {
      if (cached && Date.now() - cached.at < 30_000) return cached.opts;
      const opts: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(opts);
      cached = { at: Date.now(), opts };
      return opts;
    },
  });
}
