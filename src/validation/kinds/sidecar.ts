/** Semantic rules for Sidecar beyond its schema (Galley's checks, with field paths). */
import { at, type Findings } from '../findings.js';
import { checkDnsLabel, checkPort } from '../primitives.js';
import {
  checkConnectionPool,
  checkDestination,
  checkIpAddress,
  checkNamespacedHost,
  checkProtocol,
  checkSelectorLabels,
  checkServerTls,
  checkUnixPath,
  type Dict,
  isHttpProtocol,
  isObject,
  list,
  parseProtocol,
  report,
  UNIX,
} from './common.js';
import type { ValidationContext } from './index.js';

const LOOPBACK_OR_ANY = new Set(['127.0.0.1', '0.0.0.0', '::1', '::']);

function checkPortCommon(f: Findings, path: string, port: Dict): void {
  if (typeof port.name === 'string' && port.name !== '')
    report(f, at(path, 'name'), checkDnsLabel(port.name));
  checkProtocol(f, at(path, 'protocol'), port.protocol, { allowEmpty: true });
  if (typeof port.targetPort === 'number' && port.targetPort > 0)
    f.error(at(path, 'targetPort'), 'targetPort has no effect on a Sidecar; remove it');
}

/** `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT`, `:PORT` or `unix:///path`. */
function checkDefaultEndpoint(f: Findings, path: string, ep: string): void {
  if (ep.startsWith(UNIX)) {
    report(f, path, checkUnixPath(ep.slice(UNIX.length)));
    return;
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(ep);
  const host = m ? (m[1] ?? m[2] ?? '') : undefined;
  if (!m || (host !== '' && !LOOPBACK_OR_ANY.has(host!))) {
    f.error(
      path,
      'defaultEndpoint must be 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix:///path',
    );
    return;
  }
  const port = m[3]!;
  if (!/^\d+$/.test(port)) f.error(path, `defaultEndpoint port ${JSON.stringify(port)} is not a number`);
  else report(f, path, checkPort(Number(port)));
}

function checkIngress(
  f: Findings,
  path: string,
  ing: Dict,
  ports: Map<unknown, number>,
  index: number,
): void {
  if (!isObject(ing.port)) {
    f.error(at(path, 'port'), 'port is required for ingress listeners');
    return;
  }
  const pp = at(path, 'port');
  checkPortCommon(f, pp, ing.port);
  report(
    f,
    at(pp, 'number'),
    ing.port.number === undefined ? 'port number is required' : checkPort(ing.port.number),
  );
  if (typeof ing.bind === 'string' && ing.bind !== '') report(f, at(path, 'bind'), checkIpAddress(ing.bind));
  const first = ports.get(ing.port.number);
  if (first !== undefined)
    f.error(
      at(pp, 'number'),
      `ingress port ${String(ing.port.number)} is already used by spec.ingress[${first}]; ports on IP-bound listeners must be unique`,
    );
  else ports.set(ing.port.number, index);
  if (typeof ing.defaultEndpoint === 'string' && ing.defaultEndpoint !== '')
    checkDefaultEndpoint(f, at(path, 'defaultEndpoint'), ing.defaultEndpoint);

  if (isObject(ing.tls)) {
    const tp = at(path, 'tls');
    const tls = ing.tls;
    if (list(tls.subjectAltNames).length > 0)
      f.error(at(tp, 'subjectAltNames'), 'subjectAltNames is not supported in sidecar ingress tls');
    if (tls.httpsRedirect === true)
      f.error(at(tp, 'httpsRedirect'), 'httpsRedirect is not supported in sidecar ingress tls');
    if (tls.credentialName !== undefined && tls.credentialName !== '')
      f.error(
        at(tp, 'credentialName'),
        'credentialName is not supported in sidecar ingress tls; use serverCertificate and privateKey',
      );
    if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH')
      f.error(at(tp, 'mode'), `mode ${tls.mode} cannot be used in sidecar ingress tls`);
    checkServerTls(f, tp, tls);
  }
  checkConnectionPool(f, at(path, 'connectionPool'), ing.connectionPool);
  if (
    isObject(ing.connectionPool) &&
    ing.connectionPool.http !== undefined &&
    !isHttpProtocol(parseProtocol(ing.port.protocol))
  )
    f.warn(
      at(at(path, 'connectionPool'), 'http'),
      `HTTP connection pool settings on port ${String(ing.port.number)} whose protocol is not HTTP (${String(ing.port.protocol ?? 'unset')}); only TCP settings apply`,
    );
}

function checkEgressHosts(f: Findings, path: string, hosts: unknown[], namespace: string): void {
  if (hosts.length === 0) {
    f.error(path, 'egress listener must have at least one host (e.g. "./*" or "istio-system/*")');
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  hosts.forEach((h, i) => {
    const p = at(path, i);
    checkNamespacedHost(f, p, h, 'sidecar');
    if (typeof h !== 'string' || !h.includes('/')) return;
    const slash = h.indexOf('/');
    const ns = h.slice(0, slash) === '.' ? namespace : h.slice(0, slash);
    const name = h.slice(slash + 1);
    const names = byNamespace.get(ns) ?? new Set<string>();
    if (names.has(name) || names.has('*') || (name === '*' && names.size > 0))
      f.warn(p, `egress host ${JSON.stringify(h)} overlaps an earlier host of the same namespace`);
    names.add(name);
    byNamespace.set(ns, names);
  });
  if (byNamespace.get('*')?.has('*') && byNamespace.size > 1)
    f.warn(path, '"*/*" selects every service of every namespace; the other hosts add nothing');
}

function checkEgress(f: Findings, spec: Dict, namespace: string): void {
  const egress = list(spec.egress);
  const ports = new Map<unknown, number>();
  const sockets = new Set<string>();
  let catchAll = -1;
  egress.forEach((eg, i) => {
    const p = at('spec.egress', i);
    if (!isObject(eg)) return;
    const bind = typeof eg.bind === 'string' ? eg.bind : '';
    if (!isObject(eg.port)) {
      // A listener without port is the catch-all; only one, and it must be last.
      if (catchAll >= 0)
        f.error(p, `only one egress listener can omit port (spec.egress[${catchAll}] already does)`);
      else if (i !== egress.length - 1)
        f.error(p, 'the egress listener without port (the catch-all) must be the last one');
      catchAll = i;
    } else {
      const pp = at(p, 'port');
      const port = eg.port;
      checkPortCommon(f, pp, port);
      if (port.number === undefined || port.number === 0) {
        if (!bind.startsWith(UNIX))
          f.error(at(pp, 'number'), 'port number 0 (or unset) requires a unix:// bind address');
        else {
          report(f, at(p, 'bind'), checkUnixPath(bind.slice(UNIX.length)));
          if (eg.captureMode !== undefined && eg.captureMode !== 'DEFAULT' && eg.captureMode !== 'NONE')
            f.error(
              at(p, 'captureMode'),
              'captureMode must be DEFAULT or NONE for Unix domain socket listeners',
            );
          if (sockets.has(bind))
            f.error(at(p, 'bind'), `Unix domain socket ${JSON.stringify(bind)} is used by another listener`);
          sockets.add(bind);
        }
      } else {
        report(f, at(pp, 'number'), checkPort(port.number));
        if (bind !== '') report(f, at(p, 'bind'), checkIpAddress(bind));
        const first = ports.get(port.number);
        if (first !== undefined)
          f.error(
            at(pp, 'number'),
            `egress port ${String(port.number)} is already used by spec.egress[${first}]; ports on IP-bound listeners must be unique`,
          );
        else ports.set(port.number, i);
      }
    }
    checkEgressHosts(f, at(p, 'hosts'), list(eg.hosts), namespace);
  });
}

function checkOutboundPolicy(f: Findings, path: string, tp: Dict): void {
  if (tp.egressProxy === undefined) return;
  const ep = at(path, 'egressProxy');
  if (tp.mode !== 'ALLOW_ANY') {
    f.error(ep, 'egressProxy can only be set with mode ALLOW_ANY');
    return;
  }
  if (!isObject(tp.egressProxy)) return;
  if (!isObject(tp.egressProxy.port)) f.error(at(ep, 'port'), 'egressProxy port is required');
  checkDestination(f, ep, tp.egressProxy);
}

export function validateSidecar(spec: Dict, f: Findings, ctx: ValidationContext): void {
  if (isObject(spec.workloadSelector)) {
    checkSelectorLabels(f, 'spec.workloadSelector.labels', spec.workloadSelector.labels, 'sidecar');
    if (ctx.namespace === ctx.rootNamespace)
      f.warn(
        'spec.workloadSelector',
        `a Sidecar with a workloadSelector in the root namespace ${ctx.rootNamespace} is ignored; put it in the workload's namespace`,
      );
  }
  const ingress = list(spec.ingress);
  if (
    list(spec.egress).length === 0 &&
    ingress.length === 0 &&
    spec.outboundTrafficPolicy === undefined &&
    spec.inboundConnectionPool === undefined
  ) {
    f.error(
      'spec',
      'sidecar configuration is empty: set egress, ingress, outboundTrafficPolicy or inboundConnectionPool',
    );
    return;
  }
  const ports = new Map<unknown, number>();
  ingress.forEach((ing, i) => {
    if (isObject(ing)) checkIngress(f, at('spec.ingress', i), ing, ports, i);
  });
  checkConnectionPool(f, 'spec.inboundConnectionPool', spec.inboundConnectionPool);
  checkEgress(f, spec, ctx.namespace);
  if (isObject(spec.outboundTrafficPolicy))
    checkOutboundPolicy(f, 'spec.outboundTrafficPolicy', spec.outboundTrafficPolicy);
}
