/** Tricky rules of the networking.istio.io validators, one or two per kind, and the primitives they rest on. */
import { expect } from 'chai';
import { Findings } from '../../src/validation/findings.js';
import { validateDestinationRule } from '../../src/validation/kinds/destination-rule.js';
import { validateGateway } from '../../src/validation/kinds/gateway.js';
import type { ValidationContext } from '../../src/validation/kinds/index.js';
import { validateServiceEntry } from '../../src/validation/kinds/service-entry.js';
import { validateSidecar } from '../../src/validation/kinds/sidecar.js';
import { checkDuration, checkHostname, checkRegex, parseDuration } from '../../src/validation/primitives.js';
import { validateResource } from '../../src/validation/resource.js';

const ctx: ValidationContext = { name: 'test', namespace: 'shop', rootNamespace: 'istio-system' };

type Validator = (spec: Record<string, unknown>, f: Findings, ctx: ValidationContext) => void;

function run(validate: Validator, spec: Record<string, unknown>, context = ctx) {
  const f = new Findings();
  validate(spec, f, context);
  const show = (s: 'error' | 'warning') =>
    f.items.filter((i) => i.severity === s).map((i) => `${i.path}: ${i.message}`);
  return { errors: show('error'), warnings: show('warning') };
}

describe('networking validation', () => {
  describe('primitives', () => {
    it('parses Go/protobuf durations to milliseconds', () => {
      expect(parseDuration('1h')).to.equal(3_600_000);
      expect(parseDuration('1m30s')).to.equal(90_000);
      expect(parseDuration('1.5s')).to.equal(1500);
      expect(parseDuration('10')).to.equal(undefined);
      expect(parseDuration('10 s')).to.equal(undefined);
    });

    it('requires durations of at least 1ms with millisecond precision', () => {
      expect(checkDuration('500ms')).to.equal(undefined);
      expect(checkDuration('0.1ms')).to.match(/shorter than the 1ms minimum/);
      expect(checkDuration('1.0005s')).to.match(/sub-millisecond precision/);
      expect(checkDuration('0s')).to.match(/shorter than the 1ms minimum/);
    });

    it('accepts RE2 and rejects lookaround and backreferences', () => {
      expect(checkRegex('^/api/v[0-9]+/.*')).to.equal(undefined);
      expect(checkRegex('(?=a)b')).to.match(/not a valid RE2 regex/);
      expect(checkRegex('(a)\\1')).to.match(/not a valid RE2 regex/);
      expect(checkRegex('a'.repeat(1025))).to.match(/longer than 1024/);
    });

    it('allows a wildcard only as the leftmost label of a host', () => {
      expect(checkHostname('*.example.com')).to.equal(undefined);
      expect(checkHostname('reviews')).to.equal(undefined);
      expect(checkHostname('*')).to.match(/not allowed/);
      expect(checkHostname('*', { allowBareWildcard: true })).to.equal(undefined);
      expect(checkHostname('a.*.com')).to.match(/not the leftmost label/);
    });
  });

  describe('DestinationRule', () => {
    it('needs no client certificate for SIMPLE, but one for MUTUAL', () => {
      expect(
        run(validateDestinationRule, { host: 'a.example.com', trafficPolicy: { tls: { mode: 'SIMPLE' } } })
          .errors,
      ).to.deep.equal([]);
      const { errors } = run(validateDestinationRule, {
        host: 'a.example.com',
        trafficPolicy: { tls: { mode: 'MUTUAL' } },
      });
      expect(errors).to.have.length(2);
      expect(errors[0]).to.match(/^spec.trafficPolicy.tls.clientCertificate: MUTUAL TLS requires/);
    });

    it('requires a prime maglev table size below 5000011 and warns on subsets without labels', () => {
      const lb = (tableSize: number) => ({
        host: 'r',
        trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true, maglev: { tableSize } } } },
      });
      expect(run(validateDestinationRule, lb(65537)).errors).to.deep.equal([]);
      expect(run(validateDestinationRule, lb(5000017)).errors[0]).to.match(/less than 5000011/);
      const { warnings } = run(validateDestinationRule, { host: 'r', subsets: [{ name: 'v1' }] });
      expect(warnings[0]).to.match(/^spec.subsets\[0\].labels: subset has no labels/);
    });
  });

  describe('Gateway', () => {
    const server = (tls: Record<string, unknown> | undefined, protocol = 'HTTP') => ({
      servers: [{ port: { number: 80, name: 'http', protocol }, hosts: ['*'], ...(tls ? { tls } : {}) }],
    });

    it('lets a plain HTTP server carry tls only for httpsRedirect', () => {
      expect(run(validateGateway, server({ httpsRedirect: true })).errors).to.deep.equal([]);
      expect(run(validateGateway, server({ mode: 'SIMPLE', credentialName: 'c' })).errors[0]).to.match(
        /plain-text protocol HTTP/,
      );
    });

    it('reads the protocol case-insensitively', () => {
      expect(run(validateGateway, server(undefined, 'grpc-web')).errors).to.deep.equal([]);
      expect(run(validateGateway, server({ mode: 'PASSTHROUGH' }, 'tls')).errors).to.deep.equal([]);
    });
  });

  describe('ServiceEntry', () => {
    it('checks endpoint addresses by resolution: IPs for STATIC, names or IPs for DNS', () => {
      const se = (resolution: string, address: string) => ({
        hosts: ['db.example.com'],
        addresses: ['240.0.0.1'],
        ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }],
        resolution,
        endpoints: [{ address }],
      });
      expect(run(validateServiceEntry, se('STATIC', '10.0.0.1')).errors).to.deep.equal([]);
      expect(run(validateServiceEntry, se('STATIC', 'db1.example.com')).errors[0]).to.match(
        /must be an IP address/,
      );
      expect(run(validateServiceEntry, se('DNS', 'db1.example.com')).errors).to.deep.equal([]);
      expect(run(validateServiceEntry, se('DNS', '10.0.0.1')).errors).to.deep.equal([]);
      expect(run(validateServiceEntry, se('DNS', 'db_1')).errors[0]).to.match(
        /must be a DNS name or an IP address/,
      );
    });

    it('allows a wildcard host with DNS resolution only when endpoints are given', () => {
      const se = {
        hosts: ['*.example.com'],
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
        resolution: 'DNS',
      };
      expect(run(validateServiceEntry, se).errors[0]).to.match(/must not be wildcards/);
      expect(
        run(validateServiceEntry, { ...se, endpoints: [{ address: 'proxy.example.com' }] }).errors,
      ).to.deep.equal([]);
    });
  });

  describe('Sidecar', () => {
    it('accepts the special namespaces of egress hosts', () => {
      const hosts = ['./*', '*/*.example.com', '~/*', 'istio-system/istiod.istio-system.svc.cluster.local'];
      expect(run(validateSidecar, { egress: [{ hosts }] }).errors).to.deep.equal([]);
    });

    it('warns that a selector is ignored in the root namespace', () => {
      const spec = { workloadSelector: { labels: { app: 'a' } }, egress: [{ hosts: ['./*'] }] };
      expect(run(validateSidecar, spec, { ...ctx, namespace: 'istio-system' }).warnings[0]).to.match(
        /is ignored/,
      );
      expect(run(validateSidecar, spec).warnings).to.deep.equal([]);
    });
  });

  it('validates a whole object: schema and semantics together', () => {
    const verdict = validateResource({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'gw', namespace: 'shop' },
      spec: {
        servers: [
          { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'SIMPEL' } },
        ],
      },
    });
    const errors = verdict.findings
      .filter((f) => f.severity === 'error')
      .map((f) => `${f.path}: ${f.message}`);
    expect(errors).to.include(
      'spec.servers[0].tls.mode: must be one of PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL, got "SIMPEL"',
    );
  });
});
