/** Semantic rules for ServiceEntry beyond its schema (Galley's checks, with field paths). */
import { at, type Findings } from '../findings.js';
import { checkCidrOrIp, checkDnsLabel, checkLabel, checkPort } from '../primitives.js';
import {
  checkExportTo,
  checkFqdn,
  checkIpAddress,
  checkProtocol,
  checkSelectorLabels,
  checkUnixPath,
  checkWildcardDomain,
  type Dict,
  entries,
  isHttpProtocol,
  isObject,
  isTlsProtocol,
  list,
  parseProtocol,
  report,
  UNIX,
} from './common.js';
import type { ValidationContext } from './index.js';

const TCP_BASED = new Set(['TCP', 'HTTPS', 'TLS', 'Mongo', 'Redis', 'MySQL']);

function checkEndpoint(
  f: Findings,
  path: string,
  ep: Dict,
  resolution: string,
  portNames: Set<string>,
  portCount: number,
): void {
  const address = typeof ep.address === 'string' ? ep.address : '';
  const ap = at(path, 'address');
  if (resolution === 'STATIC') {
    if (address === '') {
      if (typeof ep.network === 'string' && ep.network !== '')
        f.warn(
          ap,
          `address is unset; the endpoint is reached through the gateway of network ${JSON.stringify(ep.network)}`,
        );
      else f.error(ap, 'endpoint address is required');
    } else if (address.startsWith(UNIX)) {
      report(f, ap, checkUnixPath(address.slice(UNIX.length)));
      if (entries(ep.ports).length > 0)
        f.error(at(path, 'ports'), 'a Unix domain socket endpoint cannot have ports');
      if (portCount !== 1)
        f.error(ap, 'a ServiceEntry with Unix domain socket endpoints must declare exactly one port');
    } else if (checkIpAddress(address))
      f.error(
        ap,
        `endpoint address ${JSON.stringify(address)} must be an IP address (or unix:///path) for resolution STATIC; use resolution DNS for host names`,
      );
  } else if (checkIpAddress(address) && checkFqdn(address)) {
    f.error(
      ap,
      `endpoint address ${JSON.stringify(address)} must be a DNS name or an IP address for resolution ${resolution}`,
    );
  }
  for (const [name, port] of entries(ep.ports)) {
    const p = at(at(path, 'ports'), name);
    if (!portNames.has(name))
      f.error(p, `endpoint port ${JSON.stringify(name)} does not name a port declared in spec.ports`);
    report(f, p, checkDnsLabel(name) ?? checkPort(port));
  }
  for (const [k, v] of entries(ep.labels)) report(f, at(at(path, 'labels'), k), checkLabel(k, v));
}

export function validateServiceEntry(spec: Dict, f: Findings, _ctx: ValidationContext): void {
  const resolution = typeof spec.resolution === 'string' ? spec.resolution : 'NONE';
  const hosts = list(spec.hosts);
  const endpoints = list(spec.endpoints);
  const hasSelector = spec.workloadSelector !== undefined;

  if (isObject(spec.workloadSelector))
    checkSelectorLabels(f, 'spec.workloadSelector.labels', spec.workloadSelector.labels, 'service entry');
  if (hasSelector && endpoints.length > 0)
    f.error('spec', 'only one of workloadSelector or endpoints can be set');

  if (hosts.length === 0) f.error('spec.hosts', 'service entry must have at least one host');
  const seenHosts = new Set<unknown>();
  hosts.forEach((h, i) => {
    const p = at('spec.hosts', i);
    if (h === '*')
      f.error(
        p,
        'the wildcard host "*" is not allowed in a ServiceEntry; use a domain such as "*.example.com"',
      );
    else {
      const bad = checkWildcardDomain(h);
      if (bad) f.error(p, bad);
      else if ((h as string).includes('*') && !(h as string).startsWith('*.'))
        f.warn(p, `partial wildcard ${JSON.stringify(h)} is not supported; use "*." followed by a domain`);
    }
    if (seenHosts.has(h)) f.error(p, `duplicate host ${JSON.stringify(h)}`);
    seenHosts.add(h);
  });

  const addresses = list(spec.addresses);
  addresses.forEach((a, i) => {
    const p = at('spec.addresses', i);
    report(f, p, checkCidrOrIp(a));
    if (typeof a === 'string' && a.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC')
      f.error(p, `CIDR addresses are only allowed with resolution NONE or STATIC, not ${resolution}`);
  });

  const ports = list(spec.ports);
  if (ports.length === 0)
    f.warn('spec.ports', 'no ports are declared; proxies create no listeners or clusters for this service');
  const portNames = new Set<string>();
  const portNumbers = new Set<unknown>();
  ports.forEach((port, i) => {
    const p = at('spec.ports', i);
    if (!isObject(port)) return;
    if (typeof port.name !== 'string' || port.name === '') f.error(at(p, 'name'), 'port name is required');
    else {
      report(f, at(p, 'name'), checkDnsLabel(port.name));
      if (portNames.has(port.name))
        f.error(at(p, 'name'), `port name ${JSON.stringify(port.name)} is already defined`);
      portNames.add(port.name);
    }
    report(
      f,
      at(p, 'number'),
      port.number === undefined ? 'port number is required' : checkPort(port.number),
    );
    if (port.number !== undefined && portNumbers.has(port.number))
      f.error(at(p, 'number'), `port number ${String(port.number)} is already defined`);
    portNumbers.add(port.number);
    checkProtocol(f, at(p, 'protocol'), port.protocol, { allowEmpty: true });
    if (port.targetPort !== undefined && port.targetPort !== 0) {
      report(f, at(p, 'targetPort'), checkPort(port.targetPort));
      if (resolution === 'NONE') f.warn(at(p, 'targetPort'), 'targetPort has no effect with resolution NONE');
    }
    if (
      addresses.length === 0 &&
      (port.protocol === undefined || port.protocol === '' || parseProtocol(port.protocol) === 'TCP')
    )
      f.warn(
        p,
        'a TCP (or unset) protocol port without spec.addresses needs DNS auto-allocation (ISTIO_META_DNS_AUTO_ALLOCATE) on the proxy',
      );
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0)
        f.error(
          'spec.endpoints',
          'endpoints cannot be set with resolution NONE (traffic goes to the original destination IP)',
        );
      if (hasSelector)
        f.warn('spec.workloadSelector', 'workloadSelector should not be set with resolution NONE');
      break;
    case 'STATIC':
      if (endpoints.length === 0 && !hasSelector)
        f.warn(
          'spec.endpoints',
          'resolution STATIC without endpoints or workloadSelector has no endpoints; requests fail with no healthy upstream',
        );
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0)
        hosts.forEach((h, i) => {
          if (h !== '*' && !checkWildcardDomain(h) && checkFqdn(h))
            f.error(
              at('spec.hosts', i),
              `host ${JSON.stringify(h)}: resolution ${resolution} without endpoints resolves the hosts, which must not be wildcards`,
            );
        });
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
        f.error('spec.endpoints', 'resolution DNS_ROUND_ROBIN allows at most one endpoint');
      if (hasSelector)
        f.warn('spec.workloadSelector', `workloadSelector should not be set with resolution ${resolution}`);
      if (
        addresses.length > 0 &&
        hosts.length > 1 &&
        ports.some((p) => isObject(p) && TCP_BASED.has(parseProtocol(p.protocol) ?? ''))
      )
        f.warn('spec.hosts', 'a service entry with addresses and a TCP port should have only one host');
      break;
    case 'DYNAMIC_DNS':
      hosts.forEach((h, i) => {
        if (typeof h === 'string' && !h.startsWith('*'))
          f.error(at('spec.hosts', i), 'resolution DYNAMIC_DNS requires wildcard hosts');
      });
      if (spec.location === 'MESH_INTERNAL')
        f.error('spec.location', 'resolution DYNAMIC_DNS is only supported for MESH_EXTERNAL');
      if (endpoints.length > 0) f.warn('spec.endpoints', 'endpoints are ignored with resolution DYNAMIC_DNS');
      break;
  }
  endpoints.forEach((ep, i) => {
    if (isObject(ep) && resolution !== 'NONE' && resolution !== 'DYNAMIC_DNS')
      checkEndpoint(f, at('spec.endpoints', i), ep, resolution, portNames, ports.length);
  });

  // Plain TCP cannot tell several hosts apart (no Host header, no SNI), unless the proxy does no resolution.
  if (resolution !== 'NONE' && hosts.length > 1) {
    const i = ports.findIndex(
      (p) =>
        isObject(p) &&
        !isHttpProtocol(parseProtocol(p.protocol)) &&
        !isTlsProtocol(parseProtocol(p.protocol)),
    );
    if (i >= 0)
      f.error(
        at('spec.ports', i),
        `several hosts with a non-HTTP, non-TLS port cannot be told apart; use one host per ServiceEntry or resolution NONE`,
      );
  }

  checkExportTo(f, 'spec.exportTo', spec.exportTo);
}
