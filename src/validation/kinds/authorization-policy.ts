/**
 * Semantic rules for AuthorizationPolicy beyond its schema: Galley's checks (pkg/config/validation,
 * pkg/config/security), with field paths, plus a few deliberate extras that catch rules which
 * could never match (see the notes on paths, ports and methods below).
 */
import {
  CLAIM_CONDITION_KEY,
  ENVOY_FILTER_CONDITION_KEY,
  HEADER_CONDITION_KEY,
  PLAIN_CONDITION_KEYS,
} from '../../api/security/conditions.js';
import { at, type Findings } from '../findings.js';
import { checkCidrOrIp } from '../primitives.js';
import { checkPolicyScope, type Dict, isObject, list } from './common.js';
import type { ValidationContext } from './index.js';

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
] as const;

const OPERATION_FIELDS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
] as const;

/** Source fields the proxy can check on a plain TCP connection (the rest need HTTP or a JWT). */
const TCP_SOURCE_FIELDS = SOURCE_FIELDS.filter((k) => !k.toLowerCase().includes('requestprincipals'));

/** Source fields (and `when` keys) the CUSTOM action does not support. */
const CUSTOM_UNSUPPORTED_SOURCE = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
] as const;

const HTTP_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
]);

const SUPPORTED_KEYS_HINT =
  'request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, ' +
  'request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<claim>], ' +
  'destination.ip, destination.port, connection.sni, experimental.envoy.filters.*[<key>]';

/** Why a `when` key is not accepted, or undefined when it is. */
export function checkConditionKey(key: string): string | undefined {
  if (PLAIN_CONDITION_KEYS.has(key)) return undefined;
  if (key.startsWith('request.headers')) {
    return HEADER_CONDITION_KEY.test(key)
      ? undefined
      : `bad key ${JSON.stringify(key)}: write the header name in brackets, e.g. request.headers[User-Agent]`;
  }
  if (key.startsWith('request.auth.claims')) {
    return CLAIM_CONDITION_KEY.test(key)
      ? undefined
      : `bad key ${JSON.stringify(key)}: write the claim name in brackets, e.g. request.auth.claims[iss] (nested: request.auth.claims[a][b])`;
  }
  if (key.startsWith('experimental.envoy.filters.')) {
    return ENVOY_FILTER_CONDITION_KEY.test(key)
      ? undefined
      : `bad key ${JSON.stringify(key)}: should have the form experimental.envoy.filters.<filter>[<key>]`;
  }
  if (key === 'destination.namespace')
    return "attribute destination.namespace is replaced by the policy's metadata.namespace";
  if (key.startsWith('destination.labels'))
    return 'attribute destination.labels is replaced by the workload selector';
  if (key === 'destination.name' || key === 'destination.user')
    return `attribute ${key} was only supported by the removed v1alpha1 RBAC API`;
  return `unknown attribute ${JSON.stringify(key)}; supported keys are ${SUPPORTED_KEYS_HINT}`;
}

/** A port as written in `ports`/`notPorts`/`destination.port`: one number 1..65535, no ranges. */
export function checkPortString(value: string): string | undefined {
  if (!/^\d+$/.test(value))
    return `port ${JSON.stringify(value)} must be a single port number such as "8080" (names and ranges are not supported)`;
  const n = Number(value);
  if (n < 1 || n > 65535) return `port ${value} must be in the range 1..65535`;
  return undefined;
}

const TEMPLATE_ONE = '{*}';
const TEMPLATE_ANY = '{**}';

/**
 * A path in `paths`/`notPaths`. Istio matches exact, prefix (`/api/*`), suffix (`*.html`) and `*`;
 * a `*` anywhere else is matched literally, which is never what was meant, so it is an error here
 * (Istio accepts it). Paths using the `{*}`/`{**}` templates follow Envoy's URI-template rules:
 * no named variables, no bare `*`, and `{**}` only as the last operator.
 */
export function checkPathValue(path: string): string | undefined {
  if (path.includes(TEMPLATE_ONE) || path.includes(TEMPLATE_ANY)) {
    // Istio's unsupported forms: named variables ({name}, {name=*}), empty braces, and a bare
    // `*`/`**` segment next to a slash.
    if (/\{\w+=\*\*?\}|\{\w*\}|\/\*|\*\//.test(path))
      return `invalid or unsupported path template ${JSON.stringify(path)}: only {*} (one segment) and {**} (any segments) are supported; named variables and bare * segments cannot be mixed in`;
    const any = path.indexOf(TEMPLATE_ANY);
    if (any >= 0 && path.slice(any + TEMPLATE_ANY.length).includes('{'))
      return `invalid path template ${JSON.stringify(path)}: {**} must be the last operator`;
    if (!path.startsWith('/')) return `path template ${JSON.stringify(path)} must start with "/"`;
    return undefined;
  }
  if (path === '*') return undefined;
  const stars = path.split('*').length - 1;
  if (stars === 0 || (stars === 1 && (path.startsWith('*') || path.endsWith('*')))) return undefined;
  const template = path
    .replace(/\/\*\*?(?=\/)/g, (m) => (m === '/**' ? '/{**}' : '/{*}'))
    .replace(/\/\*\*?$/, '/{**}');
  const hint =
    template !== path && checkPathValue(template) === undefined
      ? `; to match whole path segments use the template ${JSON.stringify(template)}`
      : '; {*} (one path segment) and {**} (any segments) templates match inside a path';
  return `path ${JSON.stringify(path)} has a "*" that is not the whole path, a single leading "*" (suffix match) or a single trailing "*" (prefix match), so Istio would match it literally${hint}`;
}

/** A `<namespace>/<serviceaccount>` entry of `serviceAccounts`. */
export function checkServiceAccountValue(value: string): string | undefined {
  if (value.length > 320) return 'service account must be at most 320 characters';
  const parts = value.split('/');
  if (value.includes('*')) return `service account ${JSON.stringify(value)} must not contain wildcards`;
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '')
    return `service account ${JSON.stringify(value)} must have the form <namespace>/<serviceaccount>`;
  return undefined;
}

function checkStringList(
  f: Findings,
  path: string,
  values: unknown,
  each?: (v: string) => string | undefined,
): void {
  list(values).forEach((v, i) => {
    if (typeof v !== 'string') return; // the schema reports the type
    const p = at(path, i);
    if (v === '') f.error(p, 'empty value is not allowed');
    else if (each) {
      const reason = each(v);
      if (reason) f.error(p, reason);
    }
  });
}

/** Exact, prefix (`abc*`), suffix (`*abc`) or presence (`*`): a `*` in the middle is matched literally. */
function warnInnerWildcards(f: Findings, path: string, values: unknown, what: string): void {
  list(values).forEach((v, i) => {
    if (typeof v !== 'string' || v.length < 3) return;
    if (v.slice(1, -1).includes('*'))
      f.warn(
        at(path, i),
        `${what} ${JSON.stringify(v)} has a "*" in the middle, which is matched literally; only a leading or trailing "*" is a wildcard`,
      );
  });
}

const nonEmpty = (v: unknown) => Array.isArray(v) && v.length > 0;

function checkSource(f: Findings, path: string, src: Dict, action: string): void {
  if (!SOURCE_FIELDS.some((k) => nonEmpty(src[k]))) {
    f.error(path, `source must not be empty: set at least one of ${SOURCE_FIELDS.join(', ')}`);
    return;
  }
  for (const k of SOURCE_FIELDS) {
    const p = at(path, k);
    if (k.toLowerCase().includes('ipblocks')) checkStringList(f, p, src[k], (v) => checkCidrOrIp(v));
    else if (k.toLowerCase().includes('serviceaccounts')) {
      checkStringList(f, p, src[k], checkServiceAccountValue);
      if (list(src[k]).length > 16)
        f.error(p, `at most 16 service accounts are allowed, got ${list(src[k]).length}`);
    } else {
      checkStringList(f, p, src[k]);
      warnInnerWildcards(f, p, src[k], 'value');
    }
  }
  const saSet = nonEmpty(src.serviceAccounts) || nonEmpty(src.notServiceAccounts);
  const idSet = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].filter((k) =>
    nonEmpty(src[k]),
  );
  if (saSet && idSet.length > 0)
    f.error(
      path,
      `serviceAccounts cannot be set together with namespaces or principals (found ${idSet.join(', ')})`,
    );
  if (action === 'CUSTOM') {
    for (const k of CUSTOM_UNSUPPORTED_SOURCE) {
      if (nonEmpty(src[k])) f.error(at(path, k), `${k} is not supported with the CUSTOM action`);
    }
  }
}

function checkOperation(f: Findings, path: string, op: Dict): void {
  if (!OPERATION_FIELDS.some((k) => nonEmpty(op[k]))) {
    f.error(path, `operation must not be empty: set at least one of ${OPERATION_FIELDS.join(', ')}`);
    return;
  }
  for (const k of ['ports', 'notPorts'] as const) checkStringList(f, at(path, k), op[k], checkPortString);
  for (const k of ['paths', 'notPaths'] as const) {
    checkStringList(f, at(path, k), op[k], checkPathValue);
    list(op[k]).forEach((v, i) => {
      if (typeof v === 'string' && v !== '' && !v.startsWith('/') && !v.startsWith('*'))
        f.warn(
          at(at(path, k), i),
          `path ${JSON.stringify(v)} does not start with "/" and will never match a request path`,
        );
    });
  }
  for (const k of ['hosts', 'notHosts'] as const) {
    checkStringList(f, at(path, k), op[k]);
    warnInnerWildcards(f, at(path, k), op[k], 'host');
  }
  for (const k of ['methods', 'notMethods'] as const) {
    checkStringList(f, at(path, k), op[k]);
    list(op[k]).forEach((m, i) => {
      if (typeof m !== 'string' || m === '' || m === '*') return;
      if (m !== m.toUpperCase())
        f.warn(
          at(at(path, k), i),
          `method ${JSON.stringify(m)} is matched case-sensitively; write it as ${m.toUpperCase()}`,
        );
      else if (!HTTP_METHODS.has(m) && !m.includes('*'))
        f.warn(at(at(path, k), i), `${JSON.stringify(m)} is not a standard HTTP method`);
    });
  }
}

function checkCondition(f: Findings, path: string, cond: Dict, action: string): void {
  const key = cond.key;
  if (typeof key !== 'string') return; // the schema reports a missing or mistyped key
  if (key === '') {
    f.error(at(path, 'key'), 'key must not be empty');
    return;
  }
  if (!nonEmpty(cond.values) && !nonEmpty(cond.notValues)) {
    f.error(path, `at least one of values or notValues must be set for key ${key}`);
  }
  const keyProblem = checkConditionKey(key);
  if (keyProblem) f.error(at(path, 'key'), keyProblem);
  if (
    action === 'CUSTOM' &&
    (key === 'source.namespace' ||
      key === 'source.principal' ||
      key === 'source.serviceAccount' ||
      key.startsWith('request.auth.'))
  )
    f.error(at(path, 'key'), `${key} is not supported with the CUSTOM action`);
  let each: ((v: string) => string | undefined) | undefined;
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') each = (v) => checkCidrOrIp(v);
  else if (key === 'destination.port') each = checkPortString;
  for (const k of ['values', 'notValues'] as const)
    checkStringList(f, at(path, k), cond[k], keyProblem ? undefined : each);
}

function checkRule(f: Findings, path: string, rule: Dict, action: string): void {
  let fromExists = false;
  let toExists = false;
  let tcpFrom = false;
  let tcpTo = false;

  if (Array.isArray(rule.from) && rule.from.length === 0)
    f.error(at(path, 'from'), 'from must not be empty; omit it to match any source');
  list(rule.from).forEach((entry, i) => {
    const p = at(at(path, 'from'), i);
    if (!isObject(entry)) return;
    if (!isObject(entry.source)) {
      f.error(at(p, 'source'), 'source is required in a from entry');
      return;
    }
    fromExists = true;
    if (TCP_SOURCE_FIELDS.some((k) => entry.source && (entry.source as Dict)[k] !== undefined))
      tcpFrom = true;
    checkSource(f, at(p, 'source'), entry.source, action);
  });

  if (Array.isArray(rule.to) && rule.to.length === 0)
    f.error(at(path, 'to'), 'to must not be empty; omit it to match any operation');
  list(rule.to).forEach((entry, i) => {
    const p = at(at(path, 'to'), i);
    if (!isObject(entry)) return;
    if (!isObject(entry.operation)) {
      f.error(at(p, 'operation'), 'operation is required in a to entry');
      return;
    }
    toExists = true;
    const op = entry.operation;
    if (op.ports !== undefined || op.notPorts !== undefined) tcpTo = true;
    checkOperation(f, at(p, 'operation'), op);
  });

  list(rule.when).forEach((c, i) => {
    if (isObject(c)) checkCondition(f, at(at(path, 'when'), i), c, action);
  });

  // Istio's warning: a DENY rule made only of HTTP attributes matches every TCP connection,
  // because attributes a TCP connection lacks count as matched for DENY.
  if (action === 'DENY' && ((fromExists && !toExists && !tcpFrom) || (toExists && !tcpTo)))
    f.warn(
      path,
      'this DENY rule uses only HTTP attributes, so it denies all traffic to TCP ports under its scope; scope it to HTTP ports with to.operation.ports',
    );
}

/**
 * - at most one of selector/targetRef/targetRefs; selector labels without wildcards;
 * - CUSTOM needs `rules` and `provider.name`, and cannot use identity attributes; `provider`
 *   only with CUSTOM; DENY needs `rules` (without them it never matches: Istio rejects it);
 * - `from`/`to` entries non-empty; values non-empty; IPs/CIDRs, ports, paths and `when` keys well-formed.
 * `spec: {}` is valid: an ALLOW policy without rules denies every request to the workloads it selects.
 */
export function validateAuthorizationPolicy(spec: Dict, f: Findings, ctx: ValidationContext): void {
  checkPolicyScope(f, spec, ctx.namespace);
  const action = typeof spec.action === 'string' ? spec.action : 'ALLOW';
  const hasRules = Array.isArray(spec.rules);

  if (spec.provider !== undefined && action !== 'CUSTOM')
    f.error('spec.provider', `provider can only be used with the CUSTOM action, not ${action}`);
  if (action === 'CUSTOM') {
    if (!hasRules)
      f.error(
        'spec.rules',
        'a CUSTOM policy without rules is never triggered; add an empty rule {} to apply it to every request',
      );
    const name = isObject(spec.provider) ? spec.provider.name : undefined;
    if (typeof name !== 'string' || name === '')
      f.error(
        'spec.provider.name',
        'the CUSTOM action requires provider.name, an extension provider defined in MeshConfig',
      );
  }
  if (action === 'DENY' && !hasRules)
    f.error(
      'spec.rules',
      'a DENY policy without rules is never triggered (it denies nothing); add an empty rule {} to deny every request',
    );
  if (action === 'AUDIT' && !hasRules)
    f.warn('spec.rules', 'an AUDIT policy without rules never audits anything');

  list(spec.rules).forEach((r, i) => {
    if (isObject(r)) checkRule(f, at('spec.rules', i), r, action);
  });
}
