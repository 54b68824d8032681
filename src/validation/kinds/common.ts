/** Field checks several kinds share (destinations, string matches, header operations, exportTo). */
import { isIP } from 'node:net';
import { at, type Findings } from '../findings.js';
import {
  checkCidrOrIp,
  checkDnsLabel,
  checkDuration,
  checkHeaderName,
  checkHostname,
  checkLabel,
  checkPercent,
  checkPort,
  checkRegex,
} from '../primitives.js';

export type Dict = Record<string, unknown>;

/** Prefix of Unix domain socket addresses (`unix:///var/run/app.sock`). */
export const UNIX = 'unix://';

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
  if (m.prefix !== undefined && opts.allowPrefix === false)
    f.error(at(path, 'prefix'), 'prefix match is not supported here; use exact or regex');
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
  else if (d.host.includes('*'))
    f.error(at(path, 'host'), `destination host ${JSON.stringify(d.host)} must not be a wildcard`);
  else report(f, at(path, 'host'), checkHostname(d.host));
  if (typeof d.subset === 'string')
    report(f, at(path, 'subset'), d.subset === '' ? 'subset must not be empty' : checkDnsLabel(d.subset));
  if (isObject(d.port) && d.port.number !== undefined)
    report(f, at(at(path, 'port'), 'number'), checkPort(d.port.number));
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
  if (routes.length > 1 && weighted && total === 0)
    f.error(path, 'total destination weight is 0; at least one weight must be > 0');
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
  list(subnets).forEach((s, i) => {
    report(f, at(path, i), checkCidrOrIp(s));
  });
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
    if (typeof ns !== 'string' || checkDnsLabel(ns))
      f.error(p, `${JSON.stringify(ns)} is not ".", "*", "~" or a namespace name`);
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
    f.error(
      path,
      `${JSON.stringify(ref)} is not a valid gateway reference (mesh, <name> or <namespace>/<name>)`,
    );
}

// ---- security.istio.io: workload selector and policy targets (istio.type.v1beta1) ----

/**
 * A security policy's `selector` (Istio's validateWorkloadSelector): no empty keys and no
 * wildcards (errors); no labels at all selects every workload of the namespace (a warning, as Istio).
 */
export function checkWorkloadSelector(f: Findings, path: string, selector: unknown): void {
  if (!isObject(selector)) return;
  const labels = entries(selector.matchLabels);
  if (labels.length === 0) {
    f.warn(
      path,
      'workload selector specified without labels: it selects every workload in the namespace; set matchLabels or remove the selector',
    );
    return;
  }
  for (const [key, value] of labels) {
    const p = at(at(path, 'matchLabels'), key);
    if (key === '') f.error(p, 'empty label key is not supported in a selector');
    else if (key.includes('*') || (typeof value === 'string' && value.includes('*')))
      f.error(
        p,
        `wildcard is not supported in a selector (${key}=${String(value)}); list exact label values`,
      );
    else report(f, p, checkLabel(key, value));
  }
}

/** The kinds a policy `targetRef` may name, as `group/kind` (core group written as ""). */
const POLICY_TARGET_KINDS = new Set([
  '/Service',
  'networking.istio.io/ServiceEntry',
  'gateway.networking.k8s.io/Gateway',
  'gateway.networking.k8s.io/GatewayClass',
]);

/** One PolicyTargetReference (Istio's validatePolicyTargetReference). */
export function checkPolicyTargetRef(f: Findings, path: string, ref: unknown, ownNamespace: string): void {
  if (!isObject(ref)) return;
  if (typeof ref.name === 'string' && ref.name === '')
    f.error(at(path, 'name'), 'targetRef name must be set');
  if (typeof ref.namespace === 'string' && ref.namespace !== '' && ref.namespace !== ownNamespace)
    f.error(
      at(path, 'namespace'),
      `cross-namespace targetRef (${ref.namespace}) is not supported; the target must be in the policy's namespace (${ownNamespace})`,
    );
  const group = typeof ref.group === 'string' ? ref.group : '';
  if (
    typeof ref.kind === 'string' &&
    !POLICY_TARGET_KINDS.has(`${group === 'core' ? '' : group}/${ref.kind}`)
  )
    f.error(
      path,
      `targetRef must be a Service (group ""), ServiceEntry (networking.istio.io), Gateway or GatewayClass (gateway.networking.k8s.io), not ${group || '""'}/${ref.kind}`,
    );
}

/**
 * Where a security policy applies: at most one of `selector`, `targetRef`, `targetRefs`, each
 * well-formed. Without any, the policy applies to its whole namespace (the mesh in the root namespace).
 */
export function checkPolicyScope(f: Findings, spec: Record<string, unknown>, ownNamespace: string): void {
  const set = (['selector', 'targetRef', 'targetRefs'] as const).filter((k) =>
    k === 'targetRefs' ? list(spec.targetRefs).length > 0 : spec[k] !== undefined && spec[k] !== null,
  );
  if (set.length > 1)
    f.error('spec', `only one of selector, targetRef or targetRefs can be set, not ${set.join(' and ')}`);
  checkWorkloadSelector(f, 'spec.selector', spec.selector);
  if (spec.targetRef !== undefined) checkPolicyTargetRef(f, 'spec.targetRef', spec.targetRef, ownNamespace);
  const refs = list(spec.targetRefs);
  if (refs.length > 16) f.error('spec.targetRefs', `at most 16 targetRefs are allowed, got ${refs.length}`);
  refs.forEach((r, i) => {
    checkPolicyTargetRef(f, at('spec.targetRefs', i), r, ownNamespace);
  });
}

// ---------------------------------------------------------------------------------------------
// Shared by DestinationRule, Gateway, ServiceEntry and Sidecar.

const PROTOCOLS: Record<string, string> = {
  tcp: 'TCP',
  udp: 'UDP',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  http: 'HTTP',
  http_proxy: 'HTTP_PROXY',
  http2: 'HTTP2',
  https: 'HTTPS',
  tls: 'TLS',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** Istio's protocol name (case-insensitive), or undefined when Istio does not know it. */
export function parseProtocol(value: unknown): string | undefined {
  return typeof value === 'string' ? PROTOCOLS[value.toLowerCase()] : undefined;
}
export const isHttpProtocol = (p: string | undefined): boolean =>
  p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
export const isTlsProtocol = (p: string | undefined): boolean => p === 'HTTPS' || p === 'TLS';

/** A port protocol; empty or unset means "detect" where `allowEmpty`. */
export function checkProtocol(
  f: Findings,
  path: string,
  value: unknown,
  opts: { allowEmpty?: boolean } = {},
): void {
  if (value === undefined || value === '') {
    if (!opts.allowEmpty) f.error(path, 'protocol is required');
    return;
  }
  if (!parseProtocol(value))
    f.error(
      path,
      `unsupported protocol ${JSON.stringify(value)}; use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL, UDP (case-insensitive)`,
    );
}

/** A bare IPv4/IPv6 address (no prefix length). */
export function checkIpAddress(value: unknown): string | undefined {
  if (typeof value !== 'string' || isIP(value) === 0)
    return `${JSON.stringify(value)} is not a valid IP address`;
  return undefined;
}

/** The path of a `unix://` address: absolute, or `@name` (Linux abstract socket). */
export function checkUnixPath(path: string): string | undefined {
  if (path === '') return 'unix address must not be empty';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/') || path.endsWith('/'))
    return `${JSON.stringify(path)} is not an absolute path to a file`;
  return undefined;
}

/**
 * Istio's ValidateWildcardDomain: a DNS name whose first label may be a wildcard (`*`, `*.a.com`,
 * `*a.com`); a short name is accepted (it resolves in the resource's namespace); the top-level
 * label must not be all digits (that is an IP address, not a host name).
 */
export function checkWildcardDomain(
  host: unknown,
  opts: { allowBareWildcard?: boolean } = {},
): string | undefined {
  const bad = checkHostname(host, opts);
  if (bad) return bad;
  const labels = (host as string).replace(/\.$/, '').split('.');
  if (labels.length > 1 && /^\d+$/.test(labels[labels.length - 1]!))
    return `host ${JSON.stringify(host)} is invalid: the top-level domain cannot be all digits (IP addresses are not host names)`;
  return undefined;
}

/** A fully qualified or short DNS name without any wildcard. */
export function checkFqdn(host: unknown): string | undefined {
  if (typeof host === 'string' && host.includes('*'))
    return `${JSON.stringify(host)} must not contain a wildcard`;
  return checkWildcardDomain(host);
}

/** Istio's workload selector rules: no empty key, no `*`; a selector without labels selects everything. */
export function checkSelectorLabels(f: Findings, path: string, labels: unknown, what: string): void {
  const items = entries(labels);
  if (items.length === 0) {
    f.warn(path, `workload selector has no labels; the ${what} applies to every workload in the namespace`);
    return;
  }
  for (const [k, v] of items) {
    const p = at(path, k);
    if (k === '') f.error(p, 'label key must not be empty');
    else if (k.includes('*') || (typeof v === 'string' && v.includes('*')))
      f.error(p, 'wildcards are not supported in selectors');
    else report(f, p, checkLabel(k, v));
  }
}

/** A host of a Gateway server or Sidecar egress listener: `namespace/dnsName` (or bare dnsName on a Gateway). */
export function checkNamespacedHost(
  f: Findings,
  path: string,
  value: unknown,
  kind: 'gateway' | 'sidecar',
): void {
  if (typeof value !== 'string' || value === '') {
    f.error(path, 'host must be a non-empty string');
    return;
  }
  const slash = value.indexOf('/');
  let dnsName = value;
  if (slash < 0) {
    if (kind === 'sidecar') {
      f.error(
        path,
        `host ${JSON.stringify(value)} must be of the form namespace/dnsName (e.g. "./*", "istio-system/*", "*/foo.example.com")`,
      );
      return;
    }
  } else {
    const ns = value.slice(0, slash);
    dnsName = value.slice(slash + 1);
    if (ns === '' || dnsName === '') {
      f.error(path, `host ${JSON.stringify(value)}: namespace and dnsName must not be empty`);
      return;
    }
    const special = kind === 'sidecar' ? ['*', '.', '~'] : ['*', '.'];
    if (!special.includes(ns) && checkDnsLabel(ns))
      f.error(
        path,
        `host ${JSON.stringify(value)} has an invalid namespace ${JSON.stringify(ns)} (use ${special.map((s) => `"${s}"`).join(', ')} or a namespace name)`,
      );
  }
  if (dnsName.includes('/')) {
    f.error(path, `host ${JSON.stringify(value)} has more than one "/"; use namespace/dnsName`);
    return;
  }
  if (dnsName === '*') return;
  if (kind === 'gateway' && isIP(dnsName) !== 0) return;
  if (!dnsName.includes('.')) {
    f.error(
      path,
      `host ${JSON.stringify(value)}: short names are not allowed; use a fully qualified name such as ${dnsName}.<namespace>.svc.cluster.local`,
    );
    return;
  }
  if (dnsName.includes('*') && !dnsName.startsWith('*.')) {
    f.error(
      path,
      `host ${JSON.stringify(value)}: partial wildcard ${JSON.stringify(dnsName)} is not allowed; use "*." followed by a domain`,
    );
    return;
  }
  report(f, path, checkWildcardDomain(dnsName));
}

function checkDurationAt(f: Findings, obj: Record<string, unknown>, key: string, path: string): void {
  if (obj[key] !== undefined) report(f, at(path, key), checkDuration(obj[key]));
}

function checkNonNegative(f: Findings, obj: Record<string, unknown>, key: string, path: string): void {
  if (typeof obj[key] === 'number' && obj[key] < 0) f.error(at(path, key), 'must be >= 0');
}

/** ConnectionPoolSettings (DestinationRule, Sidecar): counts >= 0, durations >= 1ms. */
export function checkConnectionPool(f: Findings, path: string, cp: unknown): void {
  if (!isObject(cp)) return;
  if (cp.tcp === undefined && cp.http === undefined) {
    f.error(path, 'connection pool must set tcp or http settings');
    return;
  }
  if (isObject(cp.tcp)) {
    const p = at(path, 'tcp');
    checkNonNegative(f, cp.tcp, 'maxConnections', p);
    for (const key of ['connectTimeout', 'maxConnectionDuration', 'idleTimeout'])
      checkDurationAt(f, cp.tcp, key, p);
    if (isObject(cp.tcp.tcpKeepalive)) {
      const kp = at(p, 'tcpKeepalive');
      checkDurationAt(f, cp.tcp.tcpKeepalive, 'time', kp);
      checkDurationAt(f, cp.tcp.tcpKeepalive, 'interval', kp);
    }
  }
  if (isObject(cp.http)) {
    const p = at(path, 'http');
    const h = cp.http;
    for (const key of [
      'http1MaxPendingRequests',
      'http2MaxRequests',
      'maxRequestsPerConnection',
      'maxRetries',
      'maxConcurrentStreams',
    ])
      checkNonNegative(f, h, key, p);
    checkDurationAt(f, h, 'idleTimeout', p);
    if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol === true)
      f.error(
        at(p, 'useClientProtocol'),
        'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE',
      );
  }
}

const CIPHER_SUITES = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-PSK-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-PSK-AES128-CBC-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'ECDHE-PSK-AES256-CBC-SHA',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA',
  'AES256-SHA',
  'PSK-AES128-CBC-SHA',
  'PSK-AES256-CBC-SHA',
  'DES-CBC3-SHA',
]);

/**
 * ServerTLSSettings of a Gateway server or Sidecar ingress listener (Galley's validateTLSOptions):
 * SIMPLE needs a certificate and key (files or credentialName), MUTUAL/OPTIONAL_MUTUAL also a CA
 * bundle, ISTIO_MUTUAL uses the mesh's certificates and takes none, passthrough modes ignore them.
 */
export function checkServerTls(f: Findings, path: string, tls: unknown): void {
  if (!isObject(tls)) return;
  const has = (k: string) => typeof tls[k] === 'string' && tls[k] !== '';
  const mode = typeof tls.mode === 'string' ? tls.mode : 'PASSTHROUGH';
  if (
    (tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') &&
    list(tls.cipherSuites).length === 0
  )
    f.warn(
      at(path, 'minProtocolVersion'),
      'TLS versions below 1.2 need cipherSuites: the default ciphers no longer include compatible ones',
    );
  const order = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];
  const min = order.indexOf(tls.minProtocolVersion as string);
  const max = order.indexOf(tls.maxProtocolVersion as string);
  if (min > 0 && max > 0 && min > max)
    f.error(path, 'minProtocolVersion must not be greater than maxProtocolVersion');
  const seen = new Set<unknown>();
  list(tls.cipherSuites).forEach((c, i) => {
    const p = at(at(path, 'cipherSuites'), i);
    if (typeof c !== 'string' || !CIPHER_SUITES.has(c))
      f.warn(p, `unknown cipher suite ${JSON.stringify(c)} is ignored`);
    else if (seen.has(c)) f.warn(p, `duplicate cipher suite ${JSON.stringify(c)} is ignored`);
    seen.add(c);
  });
  const certFields = ['serverCertificate', 'privateKey', 'caCertificates', 'caCrl'].filter(has);
  const hasCredential = has('credentialName') || list(tls.credentialNames).length > 0;
  if (has('credentialName') && list(tls.credentialNames).length > 0)
    f.error(path, 'set only one of credentialName or credentialNames');
  if (
    list(tls.tlsCertificates).length > 0 &&
    (has('serverCertificate') || has('privateKey') || hasCredential)
  )
    f.error(
      path,
      'tlsCertificates cannot be combined with serverCertificate/privateKey or credentialName(s)',
    );

  if (mode === 'ISTIO_MUTUAL') {
    for (const k of [
      ...certFields.filter((k) => k !== 'caCrl'),
      ...(has('credentialName') ? ['credentialName'] : []),
    ])
      f.error(at(path, k), `ISTIO_MUTUAL uses the mesh's certificates and cannot set ${k}`);
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (certFields.length > 0 || hasCredential)
      f.warn(path, `${mode} mode does not terminate TLS; its certificate settings are ignored`);
    return;
  }
  // SIMPLE, MUTUAL, OPTIONAL_MUTUAL
  const mutual = mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (hasCredential) {
    if (has('caCrl'))
      f.error(at(path, 'caCrl'), 'caCrl is not supported with credentialName; put the CRL in the credential');
    return;
  }
  if (list(tls.tlsCertificates).length === 0) {
    if (!has('serverCertificate'))
      f.error(
        at(path, 'serverCertificate'),
        `${mode} TLS requires serverCertificate and privateKey, or credentialName`,
      );
    if (!has('privateKey'))
      f.error(
        at(path, 'privateKey'),
        `${mode} TLS requires privateKey (with serverCertificate), or credentialName`,
      );
  }
  if (mutual && !has('caCertificates'))
    f.error(
      at(path, 'caCertificates'),
      `${mode} TLS requires caCertificates to verify client certificates, or credentialName`,
    );
  if (mode === 'SIMPLE' && has('caCrl'))
    f.error(
      at(path, 'caCrl'),
      'caCrl is not supported with SIMPLE TLS (no client certificates are verified)',
    );
}
