/** Semantic rules for VirtualService beyond its schema (Galley's checks, with field paths). */
import { isIP } from 'node:net';
import { at, type Findings } from '../findings.js';
import {
  checkCidrOrIp,
  checkDuration,
  checkHostname,
  checkHttpStatus,
  checkPercent,
  checkPort,
  checkRegex,
} from '../primitives.js';
import {
  checkDestination,
  checkExportTo,
  checkGatewayRef,
  checkHeaderMatches,
  checkHeaders,
  checkPercentObject,
  checkSourceLabels,
  checkStringMatch,
  checkSubnets,
  checkWeights,
  type Dict,
  entries,
  isObject,
  list,
  report,
} from './common.js';

const RETRY_ON = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  // gRPC conditions
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

const GRPC_CODES = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

function checkDurationField(f: Findings, obj: Dict, key: string, path: string): void {
  if (obj[key] !== undefined) report(f, at(path, key), checkDuration(obj[key]));
}

function checkMatch(f: Findings, path: string, m: unknown): void {
  if (!isObject(m)) return;
  for (const key of ['uri', 'scheme', 'method', 'authority'] as const)
    checkStringMatch(f, at(path, key), m[key]);
  checkHeaderMatches(f, at(path, 'headers'), m.headers);
  checkHeaderMatches(f, at(path, 'withoutHeaders'), m.withoutHeaders);
  for (const [name, match] of entries(m.queryParams)) {
    const p = at(at(path, 'queryParams'), name);
    if (name === '') f.error(p, 'query parameter name must not be empty');
    checkStringMatch(f, p, match, { allowPrefix: false, allowEmpty: true });
  }
  if (m.port !== undefined) report(f, at(path, 'port'), checkPort(m.port));
  checkSourceLabels(f, at(path, 'sourceLabels'), m.sourceLabels);
  list(m.gateways).forEach((g, i) => checkGatewayRef(f, at(at(path, 'gateways'), i), g));
}

function checkRedirect(f: Findings, path: string, r: Dict): void {
  if (
    r.uri === undefined &&
    r.authority === undefined &&
    r.scheme === undefined &&
    r.port === undefined &&
    r.derivePort === undefined
  )
    f.error(path, 'redirect must set at least one of uri, authority, scheme, port or derivePort');
  if (r.uri === '') f.error(at(path, 'uri'), 'redirect uri must not be empty');
  if (r.authority === '') f.error(at(path, 'authority'), 'redirect authority must not be empty');
  if (r.port !== undefined) report(f, at(path, 'port'), checkPort(r.port));
  if (r.port !== undefined && r.derivePort !== undefined)
    f.error(path, 'redirect cannot set both port and derivePort');
  if (typeof r.redirectCode === 'number') {
    // Istio accepts any 3xx; Envoy can only send these five and answers 301 for the rest.
    if (r.redirectCode < 300 || r.redirectCode > 399)
      f.error(at(path, 'redirectCode'), `redirect code ${r.redirectCode} must be in the range 300..399`);
    else if (!REDIRECT_CODES.has(r.redirectCode))
      f.warn(
        at(path, 'redirectCode'),
        `redirect code ${r.redirectCode} is sent as 301; use 301, 302, 303, 307 or 308`,
      );
  }
}

function checkDirectResponse(f: Findings, path: string, d: Dict): void {
  if (d.status === undefined) f.error(at(path, 'status'), 'directResponse status is required');
  else report(f, at(path, 'status'), checkHttpStatus(d.status));
  if (isObject(d.body)) {
    if (d.body.string !== undefined && d.body.bytes !== undefined)
      f.error(at(path, 'body'), 'body must set only one of string or bytes');
    if (typeof d.body.bytes === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(d.body.bytes))
      f.error(at(at(path, 'body'), 'bytes'), 'bytes must be base64-encoded');
  }
}

function checkRewrite(f: Findings, path: string, r: Dict): void {
  if (r.uri !== undefined && r.uriRegexRewrite !== undefined)
    f.error(path, 'rewrite cannot set both uri and uriRegexRewrite');
  if (isObject(r.uriRegexRewrite)) {
    const p = at(path, 'uriRegexRewrite');
    if (r.uriRegexRewrite.match === undefined) f.error(at(p, 'match'), 'uriRegexRewrite match is required');
    else report(f, at(p, 'match'), checkRegex(r.uriRegexRewrite.match));
    if (r.uriRegexRewrite.rewrite === undefined)
      f.error(at(p, 'rewrite'), 'uriRegexRewrite rewrite is required');
  }
  if (r.uri === undefined && r.authority === undefined && r.uriRegexRewrite === undefined)
    f.error(path, 'rewrite must set uri, authority or uriRegexRewrite');
}

function checkRetries(f: Findings, path: string, r: Dict): void {
  if (typeof r.attempts === 'number' && r.attempts < 0) f.error(at(path, 'attempts'), 'must be >= 0');
  checkDurationField(f, r, 'perTryTimeout', path);
  checkDurationField(f, r, 'backoff', path);
  if (typeof r.retryOn === 'string' && r.retryOn !== '') {
    for (const cond of r.retryOn.split(',')) {
      const c = cond.trim();
      if (RETRY_ON.has(c) || /^[1-5]\d\d$/.test(c)) continue;
      f.error(at(path, 'retryOn'), `unknown retry condition ${JSON.stringify(c)}`);
    }
  }
}

function checkFault(f: Findings, path: string, fault: Dict): void {
  if (fault.delay === undefined && fault.abort === undefined) f.error(path, 'fault must set delay or abort');
  if (isObject(fault.delay)) {
    const p = at(path, 'delay');
    const d = fault.delay;
    if (d.exponentialDelay !== undefined)
      f.error(at(p, 'exponentialDelay'), 'exponentialDelay is not supported; use fixedDelay');
    if (d.fixedDelay === undefined) f.error(at(p, 'fixedDelay'), 'delay requires fixedDelay');
    else checkDurationField(f, d, 'fixedDelay', p);
    checkPercentObject(f, at(p, 'percentage'), d.percentage);
    if (d.percent !== undefined) report(f, at(p, 'percent'), checkPercent(d.percent));
  }
  if (isObject(fault.abort)) {
    const p = at(path, 'abort');
    const a = fault.abort;
    const kinds = ['httpStatus', 'grpcStatus', 'http2Error'].filter((k) => a[k] !== undefined);
    if (kinds.length === 0) f.error(p, 'abort must set httpStatus or grpcStatus');
    if (kinds.length > 1) f.error(p, `abort must set only one of ${kinds.join(', ')}`);
    if (a.http2Error !== undefined)
      f.error(at(p, 'http2Error'), 'http2Error is not supported; use httpStatus or grpcStatus');
    if (a.httpStatus !== undefined) report(f, at(p, 'httpStatus'), checkHttpStatus(a.httpStatus));
    if (typeof a.grpcStatus === 'string' && !GRPC_CODES.has(a.grpcStatus))
      f.error(
        at(p, 'grpcStatus'),
        `${JSON.stringify(a.grpcStatus)} is not a gRPC status code name (e.g. UNAVAILABLE)`,
      );
    checkPercentObject(f, at(p, 'percentage'), a.percentage);
  }
}

function checkCors(f: Findings, path: string, c: Dict): void {
  list(c.allowOrigins).forEach((m, i) => checkStringMatch(f, at(at(path, 'allowOrigins'), i), m));
  if (c.maxAge !== undefined) {
    report(f, at(path, 'maxAge'), checkDuration(c.maxAge));
  }
  list(c.allowMethods).forEach((m, i) => {
    if (typeof m === 'string' && !/^[A-Z]+$|^\*$/.test(m))
      f.error(at(at(path, 'allowMethods'), i), `${JSON.stringify(m)} is not an HTTP method`);
  });
}

function checkHttpRoute(f: Findings, path: string, r: Dict, vsIsDelegate: boolean): void {
  const actions = (['route', 'redirect', 'directResponse', 'delegate'] as const).filter((k) =>
    k === 'route' ? list(r.route).length > 0 : r[k] !== undefined,
  );
  if (actions.length === 0)
    f.error(path, 'HTTP route must set one of route, redirect, directResponse or delegate');
  if (actions.length > 1)
    f.error(
      path,
      `HTTP route must set only one of route, redirect, directResponse or delegate, not ${actions.join(' and ')}`,
    );
  if (r.rewrite !== undefined && r.redirect !== undefined)
    f.error(at(path, 'rewrite'), 'rewrite cannot be used with redirect');
  if (r.delegate !== undefined && vsIsDelegate)
    f.error(at(path, 'delegate'), 'a delegate VirtualService cannot delegate further');
  if (r.mirror !== undefined && r.mirrors !== undefined)
    f.error(path, 'mirror and mirrors cannot both be set');
  if (r.mirrorPercent !== undefined) report(f, at(path, 'mirrorPercent'), checkPercent(r.mirrorPercent));
  checkPercentObject(f, at(path, 'mirrorPercentage'), r.mirrorPercentage);
  if (r.mirror !== undefined) checkDestination(f, at(path, 'mirror'), r.mirror);
  list(r.mirrors).forEach((m, i) => {
    const p = at(at(path, 'mirrors'), i);
    if (isObject(m)) {
      checkDestination(f, at(p, 'destination'), m.destination);
      checkPercentObject(f, at(p, 'percentage'), m.percentage);
    }
  });

  list(r.match).forEach((m, i) => checkMatch(f, at(at(path, 'match'), i), m));
  const routes = list(r.route);
  routes.forEach((d, i) => {
    const p = at(at(path, 'route'), i);
    if (!isObject(d)) return;
    checkDestination(f, at(p, 'destination'), d.destination);
    checkHeaders(f, at(p, 'headers'), d.headers);
  });
  checkWeights(f, at(path, 'route'), routes);
  if (isObject(r.redirect)) checkRedirect(f, at(path, 'redirect'), r.redirect);
  if (isObject(r.directResponse)) checkDirectResponse(f, at(path, 'directResponse'), r.directResponse);
  if (isObject(r.rewrite)) checkRewrite(f, at(path, 'rewrite'), r.rewrite);
  checkDurationField(f, r, 'timeout', path);
  if (isObject(r.retries)) checkRetries(f, at(path, 'retries'), r.retries);
  if (isObject(r.fault)) checkFault(f, at(path, 'fault'), r.fault);
  if (isObject(r.corsPolicy)) checkCors(f, at(path, 'corsPolicy'), r.corsPolicy);
  checkHeaders(f, at(path, 'headers'), r.headers);
}

function checkL4Route(f: Findings, path: string, r: unknown, kind: 'tls' | 'tcp', hosts: string[]): void {
  if (!isObject(r)) return;
  const matches = list(r.match);
  if (kind === 'tls' && matches.length === 0)
    f.error(at(path, 'match'), 'TLS route must have at least one match with sniHosts');
  matches.forEach((m, i) => {
    const p = at(at(path, 'match'), i);
    if (!isObject(m)) return;
    if (kind === 'tls') {
      const sni = list(m.sniHosts);
      if (sni.length === 0) f.error(at(p, 'sniHosts'), 'TLS match must have at least one SNI host');
      sni.forEach((h, j) => {
        const hp = at(at(p, 'sniHosts'), j);
        if (typeof h === 'string' && isIP(h) !== 0) {
          // Istio: a warning, not an error (clients rarely send an IP as SNI).
          f.warn(
            hp,
            `using an IP address (${JSON.stringify(h)}) as SNI goes against the SNI spec; most clients do not send it`,
          );
          return;
        }
        const bad = checkHostname(h, { allowBareWildcard: true });
        if (bad) f.error(hp, bad);
        else if (!hosts.some((vh) => hostCovers(vh.toLowerCase(), (h as string).toLowerCase())))
          f.error(
            hp,
            `SNI host ${JSON.stringify(h)} is not a compatible subset of any of the VirtualService's hosts: [${hosts.join(', ')}]`,
          );
      });
    }
    checkSubnets(f, at(p, 'destinationSubnets'), m.destinationSubnets);
    if (kind === 'tcp' && m.sourceSubnet !== undefined)
      report(f, at(p, 'sourceSubnet'), checkCidrOrIp(m.sourceSubnet));
    if (m.port !== undefined) report(f, at(p, 'port'), checkPort(m.port));
    checkSourceLabels(f, at(p, 'sourceLabels'), m.sourceLabels);
    list(m.gateways).forEach((g, j) => checkGatewayRef(f, at(at(p, 'gateways'), j), g));
  });
  const routes = list(r.route);
  if (routes.length === 0)
    f.error(at(path, 'route'), `${kind.toUpperCase()} route must have at least one destination`);
  routes.forEach((d, i) => {
    if (isObject(d)) checkDestination(f, at(at(at(path, 'route'), i), 'destination'), d.destination);
  });
  checkWeights(f, at(path, 'route'), routes);
}

/** Whether VirtualService host `vh` (maybe a wildcard) covers `host`. */
export function hostCovers(vh: string, host: string): boolean {
  if (vh === '*' || vh === host) return true;
  if (vh.startsWith('*')) {
    const suffix = vh.slice(1);
    return host.endsWith(suffix) || (host.startsWith('*') && host.slice(1).endsWith(suffix));
  }
  return false;
}

export function validateVirtualService(spec: Dict, f: Findings): void {
  const hosts = list(spec.hosts).filter((h): h is string => typeof h === 'string');
  const gateways = list(spec.gateways);
  const isDelegate = list(spec.hosts).length === 0;
  const boundToMesh = gateways.length === 0 || gateways.includes('mesh');

  if (isDelegate) {
    if (gateways.length > 0)
      f.error(
        'spec.hosts',
        'VirtualService must have at least one host (a delegate VirtualService without hosts cannot set gateways)',
      );
    else if (list(spec.http).length === 0)
      f.error('spec.hosts', 'VirtualService must have at least one host');
    if (list(spec.tls).length > 0 || list(spec.tcp).length > 0)
      f.error('spec', 'a delegate VirtualService (no hosts) can only have http routes');
  }
  const seen = new Set<string>();
  list(spec.hosts).forEach((h, i) => {
    const p = at('spec.hosts', i);
    if (h === '*' && boundToMesh) {
      f.error(
        p,
        'wildcard host "*" is not allowed for a VirtualService bound to the mesh; list hosts or bind it only to gateways',
      );
      return;
    }
    report(f, p, checkHostname(h, { allowBareWildcard: true }));
    if (typeof h === 'string') {
      if (seen.has(h)) f.error(p, `duplicate host ${JSON.stringify(h)}`);
      seen.add(h);
    }
  });
  gateways.forEach((g, i) => checkGatewayRef(f, at('spec.gateways', i), g));
  checkExportTo(f, 'spec.exportTo', spec.exportTo);

  if (list(spec.http).length === 0 && list(spec.tls).length === 0 && list(spec.tcp).length === 0)
    f.error('spec', 'VirtualService must have at least one http, tls or tcp route');

  let catchAllAt = -1;
  list(spec.http).forEach((r, i) => {
    const p = at('spec.http', i);
    if (!isObject(r)) return;
    checkHttpRoute(f, p, r, isDelegate);
    if (catchAllAt >= 0)
      f.warn(
        p,
        `this route is unreachable: spec.http[${catchAllAt}] has no match and catches every request first`,
      );
    else if (list(r.match).length === 0 && catchAllAt < 0) catchAllAt = i;
  });
  list(spec.tls).forEach((r, i) => checkL4Route(f, at('spec.tls', i), r, 'tls', hosts));
  list(spec.tcp).forEach((r, i) => checkL4Route(f, at('spec.tcp', i), r, 'tcp', hosts));
}
