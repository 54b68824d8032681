/** Field checks several kinds share (destinations, string matches, header operations, exportTo). */
import { at, type Findings } from '../findings.js';
import {
  checkCidrOrIp,
  checkDnsLabel,
  checkHeaderName,
  checkHostname,
  checkLabel,
  checkPercent,
  checkPort,
  checkRegex,
} from '../primitives.js';

type Dict = Record<string, unknown>;

export const isObject = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
export const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const entries = (v: unknown): Array<[string, unknown]> => (isObject(v) ? Object.entries(v) : []);

/** Reports `reason` at `path` when a check returned one. */
export function report(f: Findings, path: string, reason: string | undefined): void {
  if (reason) f.error(path, reason);
}

/** A StringMatch must set exactly one of exact, prefix, regex; a regex must be RE2. */
export function checkStringMatch(
  f: Findings,
  path: string,
  m: unknown,
  opts: { allowPrefix?: boolean; allowEmpty?: boolean } = {},
): void {
  if (!isObject(m)) return;
  const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
  if (set.length === 0) {
    if (!opts.allowEmpty) f.error(path, 'must set one of exact, prefix or regex');
    return;
  }
  if (set.length > 1) f.error(path, `must set only one of exact, prefix or regex, not ${set.join(' and ')}`);
  if (m.prefix !== undefined && opts.allowPrefix === false) f.error(at(path, 'prefix'), 'prefix match is not supported here; use exact or regex');
  if (m.regex !== undefined) report(f, at(path, 'regex'), checkRegex(m.regex));
}

export function checkHeaderMatches(f: Findings, path: string, headers: unknown): void {
  for (const [name, match] of entries(headers)) {
    const p = at(path, name);
    if (name === '') f.error(p, 'header name must not be empty');
    else if (name.toLowerCase() === 'host') f.error(p, 'match the Host header with authority, not headers');
    else report(f, p, checkHeaderName(name));
    checkStringMatch(f, p, match, { allowEmpty: true });
  }
}

export function checkHeaderOperations(f: Findings, path: string, ops: unknown): void {
  if (!isObject(ops)) return;
  for (const op of ['set', 'add'] as const) {
    for (const [name] of entries(ops[op])) report(f, at(at(path, op), name), checkHeaderName(name));
  }
  list(ops.remove).forEach((name, i) => {
    if (typeof name === 'string') report(f, at(at(path, 'remove'), i), checkHeaderName(name));
  });
}

export function checkHeaders(f: Findings, path: string, headers: unknown): void {
  if (!isObject(headers)) return;
  checkHeaderOperations(f, at(path, 'request'), headers.request);
  checkHeaderOperations(f, at(path, 'response'), headers.response);
}

/** A routing destination: a concrete host (no wildcard), an optional subset name and port. */
export function checkDestination(f: Findings, path: string, d: unknown): void {
  if (!isObject(d)) {
    f.error(path, 'destination is required');
    return;
  }
  if (typeof d.host !== 'string' || d.host === '') f.error(at(path, 'host'), 'destination host is required');
  else if (d.host.includes('*')) f.error(at(path, 'host'), `destination host ${JSON.stringify(d.host)} must not be a wildcard`);
  else report(f, at(path, 'host'), checkHostname(d.host));
  if (typeof d.subset === 'string') report(f, at(path, 'subset'), d.subset === '' ? 'subset must not be empty' : checkDnsLabel(d.subset));
  if (isObject(d.port) && d.port.number !== undefined) report(f, at(at(path, 'port'), 'number'), checkPort(d.port.number));
}

/** Weighted destinations: each weight >= 0 and, with several destinations, not all zero. */
export function checkWeights(f: Findings, path: string, routes: unknown[]): void {
  let total = 0;
  routes.forEach((r, i) => {
    if (!isObject(r) || typeof r.weight !== 'number') return;
    if (r.weight < 0) f.error(at(at(path, i), 'weight'), 'must be >= 0');
    else total += r.weight;
  });
  const weighted = routes.some((r) => isObject(r) && typeof r.weight === 'number');
  if (routes.length > 1 && weighted && total === 0) f.error(path, 'total destination weight is 0; at least one weight must be > 0');
  if (routes.length > 1 && !routes.every((r) => isObject(r) && typeof r.weight === 'number'))
    f.warn(path, 'some destinations have no weight; they get weight 0 when others are weighted');
}

export function checkPercentObject(f: Findings, path: string, p: unknown): void {
  if (isObject(p) && p.value !== undefined) report(f, at(path, 'value'), checkPercent(p.value));
}

export function checkSourceLabels(f: Findings, path: string, labels: unknown): void {
  for (const [k, v] of entries(labels)) report(f, at(path, k), checkLabel(k, v));
}

export function checkSubnets(f: Findings, path: string, subnets: unknown): void {
  list(subnets).forEach((s, i) => report(f, at(path, i), checkCidrOrIp(s)));
}

/** exportTo: `.`, `*`, `~` or namespace names; no duplicates; `*`/`~` alone. */
export function checkExportTo(f: Findings, path: string, exportTo: unknown): void {
  const values = list(exportTo);
  const seen = new Set<unknown>();
  values.forEach((ns, i) => {
    const p = at(path, i);
    if (seen.has(ns)) f.error(p, `duplicate entry ${JSON.stringify(ns)}`);
    seen.add(ns);
    if (ns === '.' || ns === '*' || ns === '~') return;
    if (typeof ns !== 'string' || checkDnsLabel(ns)) f.error(p, `${JSON.stringify(ns)} is not ".", "*", "~" or a namespace name`);
  });
  if (values.length > 1 && (seen.has('*') || seen.has('~')))
    f.error(path, '"*" and "~" cannot be combined with other entries');
}

/** A `gateways` entry: `mesh`, `<name>` or `<namespace>/<name>`. */
export function checkGatewayRef(f: Findings, path: string, ref: unknown): void {
  if (typeof ref !== 'string' || ref === '') {
    f.error(path, 'gateway name must be a non-empty string');
    return;
  }
  if (ref === 'mesh') return;
  const parts = ref.split('/');
  if (parts.length > 2 || parts.some((p) => checkHostname(p)))
    f.error(path, `${JSON.stringify(ref)} is not a valid gateway reference (mesh, <name> or <namespace>/<name>)`);
}
