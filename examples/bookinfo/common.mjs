// Shared plumbing of the bookinfo services: an HTTP server on $PORT (default 9080) with /health,
// JSON helpers, and calls to upstreams that forward the mesh's tracing headers (and `end-user`,
// which routing rules match on) like Istio's bookinfo does. Node built-ins only.
import { createServer, request } from 'node:http';
import { hostname } from 'node:os';

export const FORWARDED_HEADERS = [
  'x-request-id',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'b3',
  'end-user',
  'user-agent',
];

export const POD = process.env.POD_NAME || process.env.HOSTNAME || hostname();

export function forwardedHeaders(req) {
  const out = {};
  for (const name of FORWARDED_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

export function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-served-by': POD });
  res.end(text);
}

/**
 * The forward proxy for `url` from HTTP_PROXY / NO_PROXY (`isthmus up` points HTTP_PROXY at the
 * app's sidecar), or null. Node's fetch ignores these variables before Node 24, hence this.
 */
export function proxyFor(url) {
  const proxy = process.env.HTTP_PROXY || process.env.http_proxy;
  const target = new URL(url);
  if (!proxy || target.protocol !== 'http:') return null;
  const host = target.hostname.toLowerCase();
  const noProxy = (process.env.NO_PROXY || process.env.no_proxy || '').toLowerCase().split(',');
  for (const raw of noProxy) {
    const entry = raw.trim().replace(/^\*?\./, '');
    if (entry === '*' || (entry && (host === entry || host.endsWith(`.${entry}`)))) return null;
  }
  return new URL(proxy);
}

/** GET through a forward proxy: absolute-form request line, Host of the target. */
function getViaProxy(proxy, url, headers, timeoutMs) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: proxy.hostname,
        port: proxy.port || 80,
        method: 'GET',
        path: url,
        headers: { ...headers, host: new URL(url).host },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

async function getText(url, headers, timeoutMs) {
  const proxy = proxyFor(url);
  if (proxy) return getViaProxy(proxy, url, headers, timeoutMs);
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

/** GET `url` as JSON with the forwarded headers; never throws: `{ ok, status, body | error }`. */
export async function getJson(url, req, timeoutMs = Number(process.env.UPSTREAM_TIMEOUT_MS || 5000)) {
  try {
    const { status, text } = await getText(url, forwardedHeaders(req), timeoutMs);
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { ok: status >= 200 && status < 300, status, body };
  } catch (err) {
    return { ok: false, status: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Upstream base URL from the environment, e.g. DETAILS_URL=http://details:9080 (default: `http://<name>:9080`). */
export function upstream(name) {
  return (process.env[`${name.toUpperCase()}_URL`] || `http://${name}:9080`).replace(/\/$/, '');
}

/** x-request-ids already answered by /flaky/<code> (bounded: the oldest are forgotten). */
const seenRequestIds = new Set();
const SEEN_MAX = 10_000;

/** First sight of this request's x-request-id? (no id: every request is a first attempt) */
function firstAttempt(req) {
  const id = req.headers['x-request-id'];
  if (typeof id !== 'string' || id === '') return true;
  if (seenRequestIds.has(id)) return false;
  if (seenRequestIds.size >= SEEN_MAX) seenRequestIds.delete(seenRequestIds.values().next().value);
  seenRequestIds.add(id);
  return true;
}

/**
 * Starts the service. `routes` maps a path (exact) or a RegExp to a handler (req, res, match).
 * Every service also answers, for tests and demos of the mesh's traffic policies:
 *   /health            200
 *   /status/<code>     a response with that status
 *   /delay/<ms>        200 after <ms> milliseconds (at most 60000)
 *   /flaky/<code>      <code> to the first attempt of each request, 200 to the next ones: attempts
 *                      of one request share its `x-request-id` (the sidecar sets it once, retries
 *                      keep it), so a retry policy covering <code> turns every failure into a 200.
 *                      The ids seen are kept per pod, so run one pod of the service for this.
 */
export function serve(name, routes) {
  const port = Number(process.env.PORT || 9080);
  const table = Object.entries(routes);
  const server = createServer(async (req, res) => {
    const path = (req.url || '/').split('?')[0];
    if (path === '/health') return sendJson(res, 200, { status: 'ok', service: name, pod: POD });
    const status = /^\/status\/(\d{3})$/.exec(path);
    if (status) return sendJson(res, Number(status[1]), { service: name, pod: POD, status: Number(status[1]) });
    const delay = /^\/delay\/(\d{1,5})$/.exec(path);
    if (delay) {
      const ms = Math.min(Number(delay[1]), 60_000);
      return setTimeout(() => sendJson(res, 200, { service: name, pod: POD, delayMs: ms }), ms);
    }
    const flaky = /^\/flaky\/(\d{3})$/.exec(path);
    if (flaky) {
      const first = firstAttempt(req);
      const code = first ? Number(flaky[1]) : 200;
      return sendJson(res, code, { service: name, pod: POD, status: code, firstAttempt: first });
    }
    for (const [pattern, handler] of table) {
      const match = pattern.startsWith('^') ? new RegExp(pattern).exec(path) : path === pattern ? [path] : null;
      if (!match) continue;
      try {
        return await handler(req, res, match);
      } catch (err) {
        return sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
      }
    }
    sendJson(res, 404, { error: `no route for ${path}`, service: name });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, process.env.BIND_ADDRESS || '0.0.0.0', () => {
    process.stdout.write(`${name} listening on ${port} (pod ${POD})\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return server;
}
