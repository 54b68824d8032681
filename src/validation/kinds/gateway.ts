/** Semantic rules for Gateway beyond its schema (Galley's checks, with field paths). */
import { at, type Findings } from '../findings.js';
import { checkDnsLabel, checkPort } from '../primitives.js';
import {
  checkIpAddress,
  checkNamespacedHost,
  checkProtocol,
  checkServerTls,
  checkUnixPath,
  type Dict,
  isHttpProtocol,
  isObject,
  isTlsProtocol,
  list,
  parseProtocol,
  report,
  UNIX,
} from './common.js';
import type { ValidationContext } from './index.js';

function checkServer(f: Findings, path: string, s: Dict): void {
  const hosts = list(s.hosts);
  if (hosts.length === 0)
    f.error(at(path, 'hosts'), 'server must have at least one host (e.g. "*" or "ns/*.example.com")');
  hosts.forEach((h, i) => {
    checkNamespacedHost(f, at(at(path, 'hosts'), i), h, 'gateway');
  });

  const bind = typeof s.bind === 'string' ? s.bind : '';
  const port = isObject(s.port) ? s.port : undefined;
  const pp = at(path, 'port');
  let protocol: string | undefined;
  if (!port) f.error(pp, 'server port is required (number, protocol and name)');
  else {
    checkProtocol(f, at(pp, 'protocol'), port.protocol);
    protocol = parseProtocol(port.protocol);
    if (!(bind.startsWith(UNIX) && (port.number === undefined || port.number === 0)))
      report(
        f,
        at(pp, 'number'),
        port.number === undefined ? 'port number is required' : checkPort(port.number),
      );
    if (typeof port.targetPort === 'number' && port.targetPort > 0)
      f.error(at(pp, 'targetPort'), 'targetPort has no effect on a Gateway; remove it');
    if (typeof port.name !== 'string' || port.name === '') f.error(at(pp, 'name'), 'port name is required');
  }

  if (bind.startsWith(UNIX)) {
    report(f, at(path, 'bind'), checkUnixPath(bind.slice(UNIX.length)));
    if (port && typeof port.number === 'number' && port.number !== 0)
      f.error(at(pp, 'number'), 'port number must be 0 for a Unix domain socket bind');
  } else if (bind !== '') report(f, at(path, 'bind'), checkIpAddress(bind));

  if (s.name !== undefined && typeof s.name === 'string' && s.name !== '')
    report(f, at(path, 'name'), checkDnsLabel(s.name));

  const tls = isObject(s.tls) ? s.tls : undefined;
  const tp = at(path, 'tls');
  if (tls) checkServerTls(f, tp, tls);
  if (!protocol) return;
  if (isTlsProtocol(protocol)) {
    if (!tls)
      f.error(
        tp,
        `a server with protocol ${protocol} must have tls settings (mode SIMPLE, MUTUAL, PASSTHROUGH, ...)`,
      );
    else {
      if (tls.httpsRedirect === true)
        f.warn(at(tp, 'httpsRedirect'), 'httpsRedirect only applies to HTTP servers');
      if (tls.mode === 'AUTO_PASSTHROUGH' && protocol !== 'TLS')
        f.warn(
          at(tp, 'mode'),
          'AUTO_PASSTHROUGH is meant for protocol TLS (SNI-routed cross-network traffic)',
        );
    }
  } else if (tls) {
    const mode = typeof tls.mode === 'string' ? tls.mode : 'PASSTHROUGH';
    const certs = ['serverCertificate', 'privateKey', 'caCertificates'].some(
      (k) => typeof tls[k] === 'string' && tls[k] !== '',
    );
    // An HTTP server may carry tls only to redirect to HTTPS (httpsRedirect, mode unset).
    if (isHttpProtocol(protocol)) {
      if ((mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH') || certs)
        f.error(
          tp,
          `a server with plain-text protocol ${protocol} cannot have TLS settings other than httpsRedirect; use protocol HTTPS to terminate TLS`,
        );
    } else
      f.error(tp, `a server with protocol ${protocol} cannot have TLS settings; use protocol TLS or HTTPS`);
  }
}

export function validateGateway(spec: Dict, f: Findings, ctx: ValidationContext): void {
  if (ctx.name !== '<unnamed>' && !ctx.name.endsWith('*') && checkDnsLabel(ctx.name))
    f.error(
      'metadata.name',
      `gateway name ${JSON.stringify(ctx.name)} must be a DNS label (no dots), as VirtualServices reference it by name`,
    );
  const servers = list(spec.servers);
  if (servers.length === 0) f.error('spec.servers', 'gateway must have at least one server');
  const portNames = new Map<unknown, number>();
  const serverNames = new Map<unknown, number>();
  servers.forEach((s, i) => {
    const p = at('spec.servers', i);
    if (!isObject(s)) {
      f.error(p, 'server must be an object');
      return;
    }
    checkServer(f, p, s);
    if (isObject(s.port) && typeof s.port.name === 'string' && s.port.name !== '') {
      const first = portNames.get(s.port.name);
      if (first !== undefined)
        f.error(
          at(at(p, 'port'), 'name'),
          `port names must be unique across servers: ${JSON.stringify(s.port.name)} is also used by spec.servers[${first}]`,
        );
      else portNames.set(s.port.name, i);
    }
    if (typeof s.name === 'string' && s.name !== '') {
      const first = serverNames.get(s.name);
      if (first !== undefined)
        f.error(
          at(p, 'name'),
          `server names must be unique: ${JSON.stringify(s.name)} is also used by spec.servers[${first}]`,
        );
      else serverNames.set(s.name, i);
    }
  });
}
