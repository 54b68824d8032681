/** Semantic rules for DestinationRule beyond its schema (Galley's checks, with field paths). */
import { at, type Findings } from '../findings.js';
import {
  checkDnsLabel,
  checkDuration,
  checkLabel,
  checkPercent,
  checkPort,
  parseDuration,
} from '../primitives.js';
import {
  checkConnectionPool,
  checkExportTo,
  checkFqdn,
  checkIpAddress,
  checkSelectorLabels,
  checkWildcardDomain,
  type Dict,
  entries,
  isObject,
  list,
  report,
} from './common.js';
import type { ValidationContext } from './index.js';

const MAGLEV_MAX_TABLE_SIZE = 5000011;
const TOPOLOGY_LABELS = new Set([
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
  'topology.istio.io/subzone',
]);

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0) return false;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

const setKeys = (obj: Dict, keys: readonly string[]) => keys.filter((k) => obj[k] !== undefined);

function checkConsistentHash(f: Findings, path: string, ch: Dict): void {
  const hashKeys = setKeys(ch, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName']);
  if (hashKeys.length > 1)
    f.error(path, `consistentHash must set only one hash key, not ${hashKeys.join(' and ')}`);
  else if (hashKeys.length === 0)
    f.warn(
      path,
      'consistentHash sets no hash key (httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName); requests are not pinned to hosts',
    );
  if (ch.httpHeaderName === '') f.error(at(path, 'httpHeaderName'), 'httpHeaderName must not be empty');
  if (ch.httpQueryParameterName === '')
    f.error(at(path, 'httpQueryParameterName'), 'httpQueryParameterName must not be empty');
  if (isObject(ch.httpCookie)) {
    const p = at(path, 'httpCookie');
    if (typeof ch.httpCookie.name !== 'string' || ch.httpCookie.name === '')
      f.error(at(p, 'name'), 'httpCookie name is required');
    // ttl may be 0s (a session cookie), so only its syntax is checked.
    if (typeof ch.httpCookie.ttl === 'string' && parseDuration(ch.httpCookie.ttl) === undefined)
      f.error(
        at(p, 'ttl'),
        `invalid duration ${JSON.stringify(ch.httpCookie.ttl)}: use a number with a unit (h, m, s, ms)`,
      );
  }
  const algorithms = setKeys(ch, ['ringHash', 'maglev']);
  if (algorithms.length > 1) f.error(path, 'consistentHash must set only one of ringHash or maglev');
  if (ch.minimumRingSize !== undefined) {
    if (algorithms.length > 0)
      f.error(
        at(path, 'minimumRingSize'),
        `minimumRingSize cannot be combined with ${algorithms[0]}; use ringHash.minimumRingSize`,
      );
    else f.warn(at(path, 'minimumRingSize'), 'minimumRingSize is deprecated; use ringHash.minimumRingSize');
  }
  if (isObject(ch.maglev)) {
    const p = at(at(path, 'maglev'), 'tableSize');
    const size = ch.maglev.tableSize;
    if (typeof size !== 'number' || size === 0)
      f.error(p, 'maglev tableSize is required (a prime number such as 65537)');
    else if (size >= MAGLEV_MAX_TABLE_SIZE)
      f.error(p, `maglev tableSize must be less than ${MAGLEV_MAX_TABLE_SIZE}`);
    else if (!isPrime(size)) f.error(p, `maglev tableSize ${size} must be a prime number (e.g. 65537)`);
  }
}

/** `region[/zone[/subzone]]`, with an optional terminal `*`. */
function checkLocality(f: Findings, path: string, loc: unknown): void {
  if (typeof loc !== 'string' || loc === '') {
    f.error(path, 'locality must be a non-empty string');
    return;
  }
  const stars = loc.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !loc.endsWith('*')))
    f.error(path, `locality ${JSON.stringify(loc)}: at most one wildcard '*', at the end`);
  const parts = loc.split('/');
  if (parts.length > 3 || parts.some((p) => p === ''))
    f.error(
      path,
      `locality ${JSON.stringify(loc)} must be region, region/zone or region/zone/subzone without empty parts`,
    );
}

function checkLocalityLb(f: Findings, path: string, lb: Dict, hasOutlier: boolean): void {
  const distribute = list(lb.distribute);
  const failover = list(lb.failover);
  const priority = list(lb.failoverPriority);
  if (distribute.length > 0 && failover.length > 0) {
    f.error(path, 'localityLbSetting cannot set both distribute and failover');
    return;
  }
  if (failover.length > 0)
    priority.forEach((label, i) => {
      if (typeof label === 'string' && TOPOLOGY_LABELS.has(label))
        f.error(
          at(at(path, 'failoverPriority'), i),
          `failoverPriority cannot use topology label ${JSON.stringify(label)} together with failover`,
        );
    });
  const froms = new Set<unknown>();
  distribute.forEach((d, i) => {
    const p = at(at(path, 'distribute'), i);
    if (!isObject(d)) return;
    checkLocality(f, at(p, 'from'), d.from);
    if (froms.has(d.from)) f.error(at(p, 'from'), `locality ${JSON.stringify(d.from)} is listed twice`);
    froms.add(d.from);
    let total = 0;
    for (const [loc, w] of entries(d.to)) {
      checkLocality(f, at(at(p, 'to'), loc), loc);
      if (typeof w !== 'number' || w < 1 || w > 100)
        f.error(at(at(p, 'to'), loc), 'locality weight must be in the range [1, 100]');
      else total += w;
    }
    if (total !== 100) f.error(at(p, 'to'), `locality weights must sum to 100, not ${total}`);
  });
  failover.forEach((fo, i) => {
    const p = at(at(path, 'failover'), i);
    if (!isObject(fo)) return;
    if (fo.from === fo.to) f.error(p, 'failover from and to must be different regions');
    for (const k of ['from', 'to'] as const) {
      const v = fo[k];
      if (typeof v !== 'string' || v === '') f.error(at(p, k), 'region is required');
      else if (v.includes('/')) f.error(at(p, k), 'failover takes regions only (no zone or subzone)');
      else if (v.includes('*')) f.error(at(p, k), 'failover regions cannot contain the wildcard "*"');
    }
  });
  if ((failover.length > 0 || priority.length > 0) && !hasOutlier)
    f.warn(path, 'locality failover only takes effect with outlierDetection in the same traffic policy');
}

function checkLoadBalancer(f: Findings, path: string, lb: Dict, hasOutlier: boolean): void {
  if (lb.simple !== undefined && lb.consistentHash !== undefined)
    f.error(path, 'loadBalancer must set only one of simple or consistentHash');
  if (lb.simple === 'LEAST_CONN') f.warn(at(path, 'simple'), 'LEAST_CONN is deprecated; use LEAST_REQUEST');
  if (isObject(lb.consistentHash)) checkConsistentHash(f, at(path, 'consistentHash'), lb.consistentHash);
  if (isObject(lb.localityLbSetting))
    checkLocalityLb(f, at(path, 'localityLbSetting'), lb.localityLbSetting, hasOutlier);
  if (lb.warmupDurationSecs !== undefined)
    report(f, at(path, 'warmupDurationSecs'), checkDuration(lb.warmupDurationSecs));
  if (lb.warmupDurationSecs !== undefined && lb.warmup !== undefined)
    f.error(path, 'set only one of warmupDurationSecs (deprecated) or warmup');
  if (isObject(lb.warmup)) {
    const p = at(path, 'warmup');
    if (lb.warmup.duration === undefined) f.error(at(p, 'duration'), 'warmup duration is required');
    else report(f, at(p, 'duration'), checkDuration(lb.warmup.duration));
    if (lb.warmup.minimumPercent !== undefined)
      report(f, at(p, 'minimumPercent'), checkPercent(lb.warmup.minimumPercent));
    if (typeof lb.warmup.aggression === 'number' && lb.warmup.aggression < 0)
      f.error(at(p, 'aggression'), 'must be >= 0');
  }
}

function checkOutlier(f: Findings, path: string, o: Dict): void {
  for (const key of ['interval', 'baseEjectionTime']) {
    if (o[key] !== undefined) report(f, at(path, key), checkDuration(o[key]));
  }
  if (o.consecutiveErrors !== undefined)
    f.warn(
      at(path, 'consecutiveErrors'),
      'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors',
    );
  if (
    typeof o.consecutiveLocalOriginFailures === 'number' &&
    o.consecutiveLocalOriginFailures > 0 &&
    o.splitExternalLocalOriginErrors !== true
  )
    f.error(
      at(path, 'consecutiveLocalOriginFailures'),
      'consecutiveLocalOriginFailures takes effect only with splitExternalLocalOriginErrors: true',
    );
  for (const key of ['maxEjectionPercent', 'minHealthPercent']) {
    if (o[key] !== undefined) report(f, at(path, key), checkPercent(o[key]));
  }
}

/**
 * Client TLS (ClientTLSSettings). Unlike a Gateway server, a client in SIMPLE mode needs no
 * certificate: it only verifies the server (with caCertificates, or the OS roots). MUTUAL must
 * present a client certificate: clientCertificate + privateKey, or credentialName.
 */
function checkClientTls(f: Findings, path: string, tls: Dict): void {
  const has = (k: string) => typeof tls[k] === 'string' && tls[k] !== '';
  const mode = typeof tls.mode === 'string' ? tls.mode : 'DISABLE';
  const files = ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'].filter(has);
  if (tls.insecureSkipVerify === true) {
    if (mode === 'SIMPLE') {
      for (const k of ['caCertificates', 'credentialName'].filter(has))
        f.error(at(path, k), `${k} cannot be set when insecureSkipVerify is true`);
    }
    if (mode === 'MUTUAL' && has('caCertificates'))
      f.error(at(path, 'caCertificates'), 'caCertificates cannot be set when insecureSkipVerify is true');
    if ((mode === 'SIMPLE' || mode === 'MUTUAL') && list(tls.subjectAltNames).length > 0)
      f.error(at(path, 'subjectAltNames'), 'subjectAltNames cannot be set when insecureSkipVerify is true');
  }
  if (mode === 'SIMPLE' || mode === 'MUTUAL') {
    if (has('credentialName')) {
      if (files.length > 0)
        f.error(
          path,
          `credentialName cannot be combined with file paths (${files.join(', ')}); the secret holds the certificates`,
        );
      return;
    }
    if (mode === 'MUTUAL') {
      if (!has('clientCertificate'))
        f.error(
          at(path, 'clientCertificate'),
          'MUTUAL TLS requires clientCertificate and privateKey, or credentialName',
        );
      if (!has('privateKey'))
        f.error(
          at(path, 'privateKey'),
          'MUTUAL TLS requires privateKey (with clientCertificate), or credentialName',
        );
    }
    if (mode === 'SIMPLE' && (has('clientCertificate') || has('privateKey')))
      f.warn(
        path,
        'SIMPLE TLS does not present a client certificate; clientCertificate/privateKey are ignored (use MUTUAL)',
      );
    return;
  }
  if (mode === 'ISTIO_MUTUAL') {
    // Istio accepts and ignores these (the mesh's own certificates are used).
    const set = [...files, ...(has('credentialName') ? ['credentialName'] : [])];
    if (set.length > 0) f.warn(path, `ISTIO_MUTUAL uses the mesh's certificates; ${set.join(', ')} ignored`);
  }
}

function checkTunnel(f: Findings, path: string, t: Dict): void {
  if (t.protocol !== undefined && t.protocol !== '' && t.protocol !== 'CONNECT' && t.protocol !== 'POST')
    f.error(at(path, 'protocol'), 'tunnel protocol must be "CONNECT" or "POST"');
  if (typeof t.targetHost !== 'string' || t.targetHost === '')
    f.error(at(path, 'targetHost'), 'tunnel targetHost is required');
  else if (checkIpAddress(t.targetHost) && checkFqdn(t.targetHost))
    f.error(
      at(path, 'targetHost'),
      `tunnel targetHost ${JSON.stringify(t.targetHost)} must be a DNS name or an IP address`,
    );
  report(
    f,
    at(path, 'targetPort'),
    t.targetPort === undefined ? 'tunnel targetPort is required' : checkPort(t.targetPort),
  );
}

/** The policies a TrafficPolicy and a PortTrafficPolicy share. */
function checkPolicies(f: Findings, path: string, tp: Dict): void {
  const hasOutlier = isObject(tp.outlierDetection);
  if (isObject(tp.loadBalancer)) checkLoadBalancer(f, at(path, 'loadBalancer'), tp.loadBalancer, hasOutlier);
  checkConnectionPool(f, at(path, 'connectionPool'), tp.connectionPool);
  if (isObject(tp.outlierDetection)) checkOutlier(f, at(path, 'outlierDetection'), tp.outlierDetection);
  if (isObject(tp.tls)) checkClientTls(f, at(path, 'tls'), tp.tls);
}

const POLICY_FIELDS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;

function checkTrafficPolicy(f: Findings, path: string, tp: unknown): void {
  if (!isObject(tp)) return;
  if (
    setKeys(tp, [...POLICY_FIELDS, 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget']).length ===
    0
  ) {
    f.error(path, 'traffic policy must set at least one field');
    return;
  }
  if (tp.tunnel !== undefined && tp.proxyProtocol !== undefined)
    f.error(path, 'tunnel and proxyProtocol cannot be set together');
  checkPolicies(f, path, tp);
  if (isObject(tp.tunnel)) checkTunnel(f, at(path, 'tunnel'), tp.tunnel);
  if (isObject(tp.retryBudget) && tp.retryBudget.percent !== undefined)
    report(f, at(at(path, 'retryBudget'), 'percent'), checkPercent(tp.retryBudget.percent));
  const ports = new Map<unknown, number>();
  list(tp.portLevelSettings).forEach((pl, i) => {
    const p = at(at(path, 'portLevelSettings'), i);
    if (!isObject(pl)) return;
    const number = isObject(pl.port) ? pl.port.number : undefined;
    if (number === undefined) f.error(at(p, 'port'), 'port level settings require port.number');
    else {
      report(f, at(at(p, 'port'), 'number'), checkPort(number));
      const first = ports.get(number);
      // Istio accepts duplicates and applies the first entry for the port; the later one is dead config.
      if (first !== undefined)
        f.warn(
          at(at(p, 'port'), 'number'),
          `port ${String(number)} already has settings in portLevelSettings[${first}]; this entry is ignored`,
        );
      else ports.set(number, i);
    }
    if (setKeys(pl, POLICY_FIELDS).length === 0)
      f.error(
        p,
        'port traffic policy must set at least one of loadBalancer, connectionPool, outlierDetection or tls',
      );
    else checkPolicies(f, p, pl);
  });
}

/** exportTo rules specific to DestinationRule: no `~`, and with a workloadSelector only the own namespace. */
function checkDrExportTo(f: Findings, spec: Dict, ctx: ValidationContext): void {
  const exportTo = list(spec.exportTo);
  checkExportTo(f, 'spec.exportTo', exportTo);
  exportTo.forEach((ns, i) => {
    if (ns === '~')
      f.error(at('spec.exportTo', i), '"~" (export to no one) is only allowed for ServiceEntry');
  });
  const own = exportTo.map((ns) => (ns === '.' ? ctx.namespace : ns));
  if (exportTo.includes('.') && exportTo.includes(ctx.namespace))
    f.error(
      'spec.exportTo',
      `"." and the current namespace ${JSON.stringify(ctx.namespace)} are the same entry`,
    );
  if (spec.workloadSelector !== undefined && exportTo.length > 0) {
    if (!own.includes(ctx.namespace))
      f.error(
        'spec.exportTo',
        'a destination rule with a workloadSelector cannot be exported beyond its own namespace',
      );
    else if (new Set(own).size > 1)
      f.error(
        'spec.exportTo',
        'a destination rule with a workloadSelector can only be exported to its own namespace (".")',
      );
  }
}

export function validateDestinationRule(spec: Dict, f: Findings, ctx: ValidationContext): void {
  if (spec.host === undefined || spec.host === '') f.error('spec.host', 'host is required');
  else report(f, 'spec.host', checkWildcardDomain(spec.host, { allowBareWildcard: true }));

  checkTrafficPolicy(f, 'spec.trafficPolicy', spec.trafficPolicy);

  const names = new Set<unknown>();
  list(spec.subsets).forEach((s, i) => {
    const p = at('spec.subsets', i);
    if (!isObject(s)) return;
    if (typeof s.name !== 'string' || s.name === '') f.error(at(p, 'name'), 'subset name is required');
    else {
      report(f, at(p, 'name'), checkDnsLabel(s.name));
      if (names.has(s.name)) f.error(at(p, 'name'), `duplicate subset name ${JSON.stringify(s.name)}`);
    }
    names.add(s.name);
    const labels = entries(s.labels);
    if (labels.length === 0)
      f.warn(
        at(p, 'labels'),
        'subset has no labels and selects every endpoint of the host (meaningful only for SNI-based subsets at egress gateways)',
      );
    for (const [k, v] of labels) report(f, at(at(p, 'labels'), k), checkLabel(k, v));
    checkTrafficPolicy(f, at(p, 'trafficPolicy'), s.trafficPolicy);
  });

  checkDrExportTo(f, spec, ctx);
  if (isObject(spec.workloadSelector))
    checkSelectorLabels(
      f,
      'spec.workloadSelector.matchLabels',
      spec.workloadSelector.matchLabels,
      'destination rule',
    );
}
