/** The tricky rules of the security.istio.io validators, one at a time. */
import { expect } from 'chai';
import { Findings } from '../../src/validation/findings.js';
import {
  checkConditionKey,
  checkPathValue,
  checkPortString,
  checkServiceAccountValue,
  validateAuthorizationPolicy,
} from '../../src/validation/kinds/authorization-policy.js';
import type { ValidationContext } from '../../src/validation/kinds/index.js';
import { validatePeerAuthentication } from '../../src/validation/kinds/peer-authentication.js';
import {
  checkJwks,
  validateRequestAuthentication,
} from '../../src/validation/kinds/request-authentication.js';

const ctx: ValidationContext = { name: 'p', namespace: 'foo', rootNamespace: 'istio-system' };
const root: ValidationContext = { ...ctx, namespace: 'istio-system' };

type Validator = (spec: Record<string, unknown>, f: Findings, c: ValidationContext) => void;

function run(validate: Validator, spec: Record<string, unknown>, c = ctx) {
  const f = new Findings();
  validate(spec, f, c);
  const show = (sev: string) =>
    f.items.filter((x) => x.severity === sev).map((x) => `${x.path}: ${x.message}`);
  return { errors: show('error'), warnings: show('warning') };
}

describe('security validation', () => {
  describe('AuthorizationPolicy', () => {
    it('accepts spec: {} (allow nothing) and rules: [{}] (allow all) without findings', () => {
      expect(run(validateAuthorizationPolicy, {})).to.deep.equal({ errors: [], warnings: [] });
      expect(run(validateAuthorizationPolicy, { rules: [{}] })).to.deep.equal({ errors: [], warnings: [] });
    });

    it('rejects DENY without rules (never triggered) but accepts DENY with an empty rule', () => {
      expect(run(validateAuthorizationPolicy, { action: 'DENY' }).errors).to.have.length(1);
      expect(run(validateAuthorizationPolicy, { action: 'DENY' }).errors[0]).to.match(
        /^spec\.rules: a DENY policy/,
      );
      expect(run(validateAuthorizationPolicy, { action: 'DENY', rules: [{}] }).errors).to.deep.equal([]);
    });

    it('ties provider to CUSTOM both ways', () => {
      const custom = run(validateAuthorizationPolicy, { action: 'CUSTOM' });
      expect(custom.errors.some((e) => e.startsWith('spec.rules: a CUSTOM policy without rules'))).to.equal(
        true,
      );
      expect(
        custom.errors.some((e) => e.startsWith('spec.provider.name: the CUSTOM action requires')),
      ).to.equal(true);
      const ok = run(validateAuthorizationPolicy, {
        action: 'CUSTOM',
        provider: { name: 'ext' },
        rules: [{}],
      });
      expect(ok.errors).to.deep.equal([]);
      const allow = run(validateAuthorizationPolicy, { provider: { name: 'ext' }, rules: [{}] });
      expect(allow.errors).to.deep.equal([
        'spec.provider: provider can only be used with the CUSTOM action, not ALLOW',
      ]);
    });

    it('warns that a DENY rule with only HTTP attributes also denies TCP traffic, unless scoped by port', () => {
      const httpOnly = { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] };
      expect(run(validateAuthorizationPolicy, httpOnly).warnings).to.have.length(1);
      const scoped = {
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['POST'], ports: ['8080'] } }] }],
      };
      expect(run(validateAuthorizationPolicy, scoped).warnings).to.deep.equal([]);
      const byNamespace = { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['dev'] } }] }] };
      expect(run(validateAuthorizationPolicy, byNamespace).warnings).to.deep.equal([]);
    });

    it('warns (not errors) on a lowercase method, which is matched case-sensitively', () => {
      const r = run(validateAuthorizationPolicy, { rules: [{ to: [{ operation: { methods: ['get'] } }] }] });
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings[0]).to.contain('write it as GET');
    });

    it('treats an empty matchLabels selector as a warning, like Istio', () => {
      const r = run(validateAuthorizationPolicy, { selector: { matchLabels: {} }, rules: [{}] });
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings).to.deep.equal([
        'spec.selector: workload selector specified without labels: it selects every workload in the namespace; set matchLabels or remove the selector',
      ]);
    });

    it('accepts a targetRef to a Gateway, Service or ServiceEntry; core group may be "" or omitted', () => {
      for (const ref of [
        { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'gw' },
        { kind: 'Service', name: 'svc' },
        { group: '', kind: 'Service', name: 'svc', namespace: 'foo' },
        { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'se' },
      ])
        expect(
          run(validateAuthorizationPolicy, { targetRef: ref, rules: [{}] }).errors,
          JSON.stringify(ref),
        ).to.deep.equal([]);
    });

    it('checks paths: prefix/suffix/presence and {*}/{**} templates only', () => {
      for (const ok of ['*', '/api/*', '*.html', '/exact', '/v1/{*}/items', '/files/{**}', '/{*}/x/{**}'])
        expect(checkPathValue(ok), ok).to.equal(undefined);
      for (const bad of [
        '/api/*/users',
        '**',
        '*admin*',
        '/{name}/{*}',
        '/{**}/{*}',
        '/a/*/{*}',
        '/{x=*}/{*}',
      ])
        expect(checkPathValue(bad), bad).to.be.a('string');
      expect(checkPathValue('/api/*/users/*')).to.contain('"/api/{*}/users/{**}"');
    });

    it('knows the supported condition keys', () => {
      for (const ok of [
        'request.headers[x-token]',
        'source.ip',
        'remote.ip',
        'source.namespace',
        'source.principal',
        'request.auth.principal',
        'request.auth.audiences',
        'request.auth.presenter',
        'request.auth.claims[iss]',
        'request.auth.claims[nested][key]',
        'destination.ip',
        'destination.port',
        'connection.sni',
        'experimental.envoy.filters.network.mysql_proxy[db.table]',
      ])
        expect(checkConditionKey(ok), ok).to.equal(undefined);
      for (const bad of [
        'request.headers',
        'request.headers[]',
        'request.auth.claims',
        'source.user',
        'destination.namespace',
      ])
        expect(checkConditionKey(bad), bad).to.be.a('string');
    });

    it('takes ports as single numbers 1..65535 and service accounts as namespace/name', () => {
      expect(checkPortString('8080')).to.equal(undefined);
      for (const bad of ['0', '65536', '80-90', 'http', ' 80'])
        expect(checkPortString(bad), bad).to.be.a('string');
      expect(checkServiceAccountValue('default/sleep')).to.equal(undefined);
      for (const bad of ['sleep', 'default/*', '/sleep', 'a/b/c'])
        expect(checkServiceAccountValue(bad), bad).to.be.a('string');
    });
  });

  describe('PeerAuthentication', () => {
    it('allows portLevelMtls only with a labelled selector, naming the mesh-wide case in the root namespace', () => {
      const spec = { mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } };
      expect(run(validatePeerAuthentication, spec, root).errors).to.deep.equal([
        'spec.portLevelMtls: portLevelMtls requires a selector with matchLabels; a mesh-wide PeerAuthentication cannot have port-level mTLS',
      ]);
      // A selector without labels selects the whole namespace: still an error, plus Istio's warning.
      const empty = run(validatePeerAuthentication, { ...spec, selector: { matchLabels: {} } });
      expect(empty.errors).to.have.length(1);
      expect(empty.warnings).to.have.length(1);
      expect(
        run(validatePeerAuthentication, { ...spec, selector: { matchLabels: { app: 'a' } } }).errors,
      ).to.deep.equal([]);
    });

    it('rejects an empty portLevelMtls map and port keys outside 1..65535', () => {
      const selector = { matchLabels: { app: 'a' } };
      expect(run(validatePeerAuthentication, { selector, portLevelMtls: {} }).errors).to.deep.equal([
        'spec.portLevelMtls: portLevelMtls, if set, must have at least one port',
      ]);
      const r = run(validatePeerAuthentication, {
        selector,
        portLevelMtls: { '0': {}, '65535': {}, '65536': {} },
      });
      expect(r.errors.map((e) => e.split(':')[0])).to.deep.equal([
        'spec.portLevelMtls["0"]',
        'spec.portLevelMtls["65536"]',
      ]);
    });
  });

  describe('RequestAuthentication', () => {
    it('warns (Istio ignores jwksUri) rather than errors when both jwks and jwksUri are set', () => {
      const jwks = JSON.stringify({ keys: [{ kty: 'RSA', e: 'AQAB', n: 'xAE7' }] });
      const r = run(validateRequestAuthentication, {
        jwtRules: [{ issuer: 'iss', jwksUri: 'https://example.com/jwks.json', jwks }],
      });
      expect(r.errors).to.deep.equal([]);
      expect(r.warnings).to.deep.equal([
        'spec.jwtRules[0].jwksUri: jwksUri is ignored when jwks is set; set only one of them',
      ]);
    });

    it('accepts a key set or a single JWK as jwks, and nothing else', () => {
      expect(checkJwks('{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}')).to.equal(undefined);
      expect(checkJwks('{"kty":"RSA","e":"AQAB","n":"xAE7"}')).to.equal(undefined);
      for (const bad of ['', '[]', '{"keys":{}}', '{"keys":[]}', '{"keys":[{"n":"x"}]}', '{"e":"AQAB"}'])
        expect(checkJwks(bad), bad).to.be.a('string');
    });

    it('needs an issuer unless a jwksUri is given (Istio 1.22+), and an http(s) jwksUri', () => {
      expect(run(validateRequestAuthentication, { jwtRules: [{}] }).errors).to.deep.equal([
        'spec.jwtRules[0].issuer: issuer is required (or at least a jwksUri)',
      ]);
      const uriOnly = run(validateRequestAuthentication, {
        jwtRules: [{ jwksUri: 'https://example.com/k.json' }],
      });
      expect(uriOnly.errors).to.deep.equal([]);
      expect(uriOnly.warnings).to.have.length(1);
      const ftp = run(validateRequestAuthentication, {
        jwtRules: [{ issuer: 'i', jwksUri: 'ftp://example.com/k' }],
      });
      expect(ftp.errors[0]).to.contain('scheme "ftp" is not supported');
    });

    it('rejects claim headers that are pseudo-headers, Host or not header tokens', () => {
      const r = run(validateRequestAuthentication, {
        jwtRules: [
          {
            issuer: 'i',
            outputClaimToHeaders: [
              { header: ':authority', claim: 'a' },
              { header: 'host', claim: 'b' },
              { header: 'x.claim', claim: 'c' },
              { header: 'x-claim', claim: 'd' },
            ],
          },
        ],
      });
      expect(r.errors.map((e) => e.split(':')[0])).to.deep.equal([
        'spec.jwtRules[0].outputClaimToHeaders[0].header',
        'spec.jwtRules[0].outputClaimToHeaders[1].header',
        'spec.jwtRules[0].outputClaimToHeaders[2].header',
      ]);
    });
  });
});
