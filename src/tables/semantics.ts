/**
 * Semantic rules of the compiled config that a JSON schema cannot express: one-of fields,
 * RE2 validity, references between sections, uniqueness. Runs only on schema-valid input.
 */
import type { Endpoint } from './clusters.js';
import { type L4Route, parseSubnet, sniPatternError } from './l4-routes.js';
import type { RouteMatch, StringMatch } from './match.js';
import { regexError } from './regex.js';
import type { Cors, HeaderOps, Route, RouteConfig } from './routes.js';
import type { ProxyTables } from './tables.js';
import { checkClusterTls } from './tls.js';
import type { TableError } from './validate.js';

export function checkTablesSemantics(t: ProxyTables): TableError[] {
  const errors: TableError[] = [];
  const err = (path: string, message: string) => errors.push({ path, message });

  const clusterNames = new Set<string>();
  t.clusters.forEach((c, i) => {
    if (clusterNames.has(c.name)) err(`clusters[${i}].name`, `duplicate cluster "${c.name}"`);
    clusterNames.add(c.name);
    if (c.tls) for (const e of checkClusterTls(c.tls)) err(`clusters[${i}].${e.path}`, e.message);
  });

  const rcNames = new Set<string>();
  const rcPorts = new Set<number>();
  t.routeConfigs.forEach((rc, i) => {
    if (rcNames.has(rc.name)) err(`routeConfigs[${i}].name`, `duplicate route config "${rc.name}"`);
    rcNames.add(rc.name);
    if (rc.port !== undefined) {
      if (rcPorts.has(rc.port)) err(`routeConfigs[${i}].port`, `another route config serves port ${rc.port}`);
      rcPorts.add(rc.port);
    }
    checkRouteConfig(rc, `routeConfigs[${i}]`, clusterNames, err);
  });

  const listenerNames = new Set<string>();
  const listenerPorts = new Map<string, number>();
  t.listeners.forEach((l, i) => {
    const p = `listeners[${i}]`;
    if (listenerNames.has(l.name)) err(`${p}.name`, `duplicate listener "${l.name}"`);
    listenerNames.add(l.name);
    const bind = `${l.address ?? '0.0.0.0'}:${l.port}`;
    if (l.port !== 0 && listenerPorts.has(bind))
      err(`${p}.port`, `port ${bind} already used by another listener`);
    listenerPorts.set(bind, i);
    const http =
      l.protocol === 'http' || l.protocol === 'http2' || l.protocol === 'grpc' || l.protocol === 'auto';
    if (http && !l.routeConfig && !l.routeByPort) err(p, 'an HTTP listener needs routeConfig or routeByPort');
    if (l.routeConfig && l.routeByPort) err(p, 'set only one of routeConfig and routeByPort');
    if (l.routeConfig && !rcNames.has(l.routeConfig)) {
      err(`${p}.routeConfig`, `unknown route config "${l.routeConfig}"`);
    }
    if (l.cluster && !clusterNames.has(l.cluster)) err(`${p}.cluster`, `unknown cluster "${l.cluster}"`);
    const l4 = l.protocol === 'tcp' || l.protocol === 'tls';
    if (l4 && !l.cluster && !l.l4Routes?.length) err(p, `a ${l.protocol} listener needs cluster or l4Routes`);
    if (l.l4Routes && !l4) err(`${p}.l4Routes`, 'only tcp and tls listeners have l4Routes');
    l.l4Routes?.forEach((r, j) => {
      checkL4Route(r, l.protocol, `${p}.l4Routes[${j}]`, clusterNames, err);
    });
  });

  if (t.endpoints) {
    errors.push(...checkEndpointsSemantics(t.endpoints, 'endpoints'));
    for (const name of Object.keys(t.endpoints)) {
      if (!clusterNames.has(name)) err(`endpoints[${JSON.stringify(name)}]`, `unknown cluster "${name}"`);
    }
  }
  return errors;
}

export function checkEndpointsSemantics(clusters: Record<string, Endpoint[]>, base: string): TableError[] {
  const errors: TableError[] = [];
  for (const [name, eps] of Object.entries(clusters)) {
    const seen = new Set<string>();
    eps.forEach((ep, i) => {
      const key = `${ep.address}:${ep.port}`;
      if (seen.has(key)) {
        errors.push({ path: `${base}[${JSON.stringify(name)}][${i}]`, message: `duplicate endpoint ${key}` });
      }
      seen.add(key);
      if (ep.port === 0)
        errors.push({ path: `${base}[${JSON.stringify(name)}][${i}].port`, message: 'port 0' });
    });
  }
  return errors;
}

type Err = (path: string, message: string) => void;

function checkRouteConfig(rc: RouteConfig, base: string, clusters: Set<string>, err: Err): void {
  const domains = new Map<string, string>();
  rc.virtualHosts.forEach((vh, v) => {
    const vp = `${base}.virtualHosts[${v}]`;
    vh.domains.forEach((d, i) => {
      const lower = d.toLowerCase();
      const prev = domains.get(lower);
      if (prev) err(`${vp}.domains[${i}]`, `domain "${d}" already served by virtual host "${prev}"`);
      domains.set(lower, vh.name);
      const stars = d.split('*').length - 1;
      if (stars > 1 || (stars === 1 && d !== '*' && !d.startsWith('*') && !d.endsWith('*'))) {
        err(`${vp}.domains[${i}]`, 'a wildcard must be the whole domain or its first or last character');
      }
    });
    if (vh.cors) checkCors(vh.cors, `${vp}.cors`, err);
    checkHeaderOps(vh.requestHeaders, `${vp}.requestHeaders`, err);
    checkHeaderOps(vh.responseHeaders, `${vp}.responseHeaders`, err);
    vh.routes.forEach((r, i) => {
      checkRoute(r, `${vp}.routes[${i}]`, clusters, err);
    });
  });
}

function checkL4Route(r: L4Route, protocol: string, p: string, clusters: Set<string>, err: Err): void {
  if (r.clusters.length === 0) err(`${p}.clusters`, 'at least one cluster is required');
  let total = 0;
  r.clusters.forEach((wc, i) => {
    total += wc.weight;
    if (!clusters.has(wc.cluster)) err(`${p}.clusters[${i}].cluster`, `unknown cluster "${wc.cluster}"`);
  });
  if (r.clusters.length > 0 && total === 0) err(`${p}.clusters`, 'total weight must be > 0');
  const sni = r.match?.sniHosts;
  if (sni && protocol !== 'tls') err(`${p}.match.sniHosts`, 'sniHosts needs a tls listener');
  if (sni?.length === 0) err(`${p}.match.sniHosts`, 'must not be empty (leave it out to match any SNI)');
  sni?.forEach((h, i) => {
    const e = sniPatternError(h);
    if (e) err(`${p}.match.sniHosts[${i}]`, `"${h}" ${e}`);
  });
  const subnets = r.match?.destinationSubnets;
  if (subnets?.length === 0) err(`${p}.match.destinationSubnets`, 'must not be empty');
  subnets?.forEach((s, i) => {
    const parsed = parseSubnet(s);
    if (typeof parsed === 'string') err(`${p}.match.destinationSubnets[${i}]`, parsed);
  });
}

function checkRoute(r: Route, p: string, clusters: Set<string>, err: Err): void {
  checkHeaderOps(r.requestHeaders, `${p}.requestHeaders`, err);
  checkHeaderOps(r.responseHeaders, `${p}.responseHeaders`, err);
  r.forward?.clusters.forEach((wc, i) => {
    checkHeaderOps(wc.requestHeaders, `${p}.forward.clusters[${i}].requestHeaders`, err);
    checkHeaderOps(wc.responseHeaders, `${p}.forward.clusters[${i}].responseHeaders`, err);
  });
  for (const [field, value] of [
    ['forward.rewrite.authority', r.forward?.rewrite?.authority],
    ['forward.rewrite.path', r.forward?.rewrite?.path],
    ['forward.rewrite.pathPrefix', r.forward?.rewrite?.pathPrefix],
    ['redirect.host', r.redirect?.host],
    ['redirect.path', r.redirect?.path],
    ['redirect.pathPrefix', r.redirect?.pathPrefix],
  ] as const) {
    if (value !== undefined && hasControl(value)) err(`${p}.${field}`, 'must not contain control characters');
  }
  const actions = (r.forward ? 1 : 0) + (r.redirect ? 1 : 0) + (r.directResponse ? 1 : 0);
  if (actions !== 1) err(p, 'exactly one of forward, redirect, directResponse is required');
  if (r.match) checkMatch(r.match, `${p}.match`, err);
  const prefixMatch = r.match?.path?.prefix !== undefined;
  if (r.cors) checkCors(r.cors, `${p}.cors`, err);
  if (r.redirect?.pathPrefix !== undefined && !prefixMatch) {
    err(`${p}.redirect.pathPrefix`, 'needs a prefix path match');
  }
  if (r.redirect?.path !== undefined && r.redirect.pathPrefix !== undefined) {
    err(`${p}.redirect`, 'set only one of path and pathPrefix');
  }
  const ab = r.fault?.abort;
  if (ab && ab.httpStatus === undefined && ab.grpcStatus === undefined)
    err(`${p}.fault.abort`, 'set httpStatus or grpcStatus');
  const f = r.forward;
  if (!f) return;
  if (f.clusters.length === 0) err(`${p}.forward.clusters`, 'at least one cluster is required');
  let total = 0;
  f.clusters.forEach((wc, i) => {
    total += wc.weight;
    if (!clusters.has(wc.cluster))
      err(`${p}.forward.clusters[${i}].cluster`, `unknown cluster "${wc.cluster}"`);
  });
  if (f.clusters.length > 0 && total === 0) err(`${p}.forward.clusters`, 'total weight must be > 0');
  f.mirrors?.forEach((m, i) => {
    if (!clusters.has(m.cluster)) err(`${p}.forward.mirrors[${i}].cluster`, `unknown cluster "${m.cluster}"`);
  });
  const rw = f.rewrite;
  if (rw) {
    const n =
      (rw.path !== undefined ? 1 : 0) + (rw.pathPrefix !== undefined ? 1 : 0) + (rw.pathRegex ? 1 : 0);
    if (n > 1) err(`${p}.forward.rewrite`, 'set at most one of path, pathPrefix, pathRegex');
    if (rw.pathPrefix !== undefined && !prefixMatch)
      err(`${p}.forward.rewrite.pathPrefix`, 'needs a prefix path match');
    if (rw.pathRegex) {
      const e = regexError(rw.pathRegex.pattern);
      if (e) err(`${p}.forward.rewrite.pathRegex.pattern`, `invalid RE2 regex: ${e}`);
    }
  }
  const rt = f.retries;
  if (rt) {
    if (rt.retriableStatusCodes?.length && !rt.retryOn.includes('retriable-status-codes')) {
      err(`${p}.forward.retries.retriableStatusCodes`, 'needs retryOn "retriable-status-codes"');
    }
    if (
      rt.backoffBaseMs !== undefined &&
      rt.backoffMaxMs !== undefined &&
      rt.backoffMaxMs < rt.backoffBaseMs
    ) {
      err(`${p}.forward.retries.backoffMaxMs`, 'must be >= backoffBaseMs');
    }
  }
}

function checkMatch(m: RouteMatch, p: string, err: Err): void {
  if (m.path) checkStringMatch(m.path, `${p}.path`, err);
  if (m.path?.exact !== undefined && !m.path.exact.startsWith('/'))
    err(`${p}.path.exact`, 'must start with "/"');
  if (m.method) checkStringMatch(m.method, `${p}.method`, err);
  if (m.authority) checkStringMatch(m.authority, `${p}.authority`, err);
  m.headers?.forEach((h, i) => {
    if (h.match) checkStringMatch(h.match, `${p}.headers[${i}].match`, err);
  });
  m.withoutHeaders?.forEach((h, i) => {
    if (h.match) checkStringMatch(h.match, `${p}.withoutHeaders[${i}].match`, err);
  });
  m.queryParams?.forEach((q, i) => {
    if (q.match) checkStringMatch(q.match, `${p}.queryParams[${i}].match`, err);
  });
}

function checkCors(c: Cors, p: string, err: Err): void {
  c.allowOrigins.forEach((o, i) => {
    checkStringMatch(o, `${p}.allowOrigins[${i}]`, err);
  });
  for (const field of ['allowMethods', 'allowHeaders', 'exposeHeaders'] as const) {
    c[field]?.forEach((v, i) => {
      if (hasControl(v) || v.includes(','))
        err(`${p}.${field}[${i}]`, 'must be a single token without control characters');
    });
  }
}

/**
 * Header names must be tokens and values free of control characters: the proxy writes
 * them verbatim, so a CR/LF here would split the HTTP message.
 */
function checkHeaderOps(ops: HeaderOps | undefined, p: string, err: Err): void {
  if (!ops) return;
  for (const kind of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(ops[kind] ?? {})) {
      if (!isToken(name)) err(`${p}.${kind}[${JSON.stringify(name)}]`, 'header name must be an HTTP token');
      if (hasControl(value))
        err(`${p}.${kind}[${JSON.stringify(name)}]`, 'header value must not contain control characters');
    }
  }
  ops.remove?.forEach((name, i) => {
    if (!isToken(name)) err(`${p}.remove[${i}]`, 'header name must be an HTTP token');
  });
}

const TOKEN_CHARS = new Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (const c of s) if (!TOKEN_CHARS.has(c)) return false;
  return true;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

export function checkStringMatch(m: StringMatch, p: string, err: Err): void {
  const n =
    (m.exact !== undefined ? 1 : 0) +
    (m.prefix !== undefined ? 1 : 0) +
    (m.suffix !== undefined ? 1 : 0) +
    (m.regex !== undefined ? 1 : 0);
  if (n !== 1) err(p, 'exactly one of exact, prefix, suffix, regex is required');
  if (m.regex !== undefined) {
    const e = regexError(m.regex);
    if (e) err(`${p}.regex`, `invalid RE2 regex: ${e}`);
  }
}
