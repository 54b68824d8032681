/**
 * The AuthorizationPolicy matrix, case by case as Istio documents it (authorization-policy
 * reference, concepts/security, "Authorization Policy Normalization", authz-tcp task).
 */
import { expect } from 'chai';
import {
  AuthzAttributes,
  AuthzCompileError,
  AuthzDecision,
  AuthzEngine,
  REASON_NO_ALLOW_POLICY,
  REASON_NO_POLICIES,
  REASON_NOT_ALLOWED,
} from '../../src/authz/index.js';
import type { AuthzRule } from '../../src/tables/security.js';
import { allow, allowed, audit, decide, deny, policy, request, tcp } from './helpers.js';

const from = (source: NonNullable<AuthzRule['from']>[number]['source']): AuthzRule => ({
  from: [{ source }],
});
const to = (operation: NonNullable<AuthzRule['to']>[number]['operation']): AuthzRule => ({
  to: [{ operation }],
});
const when = (key: string, values?: string[], notValues?: string[]): AuthzRule => ({
  when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }],
});

describe('authz/engine: actions and evaluation order', () => {
  it('no policy at all: allowed', () => {
    const d = decide([], request());
    expect(d.allowed).to.equal(true);
    expect(d.reason).to.equal(REASON_NO_POLICIES);
  });

  it('ALLOW `spec: {}` (no rules) denies everything', () => {
    const d = decide([allow([])], request());
    expect(d.allowed).to.equal(false);
    expect(d.reason).to.equal(REASON_NOT_ALLOWED);
  });

  it('ALLOW `rules: [{}]` allows everything, naming the policy and rule', () => {
    const p = allow([{}]);
    const d = decide([p], request());
    expect(d.allowed).to.equal(true);
    expect(d.policy).to.equal(`foo/${p.name}`);
    expect(d.ruleId).to.equal(`ns[foo]-policy[${p.name}]-rule[0]`);
  });

  it('DENY `rules: [{}]` denies everything; DENY without rules denies nothing', () => {
    expect(allowed([deny([{}])], request())).to.equal(false);
    const d = decide([deny([])], request());
    expect(d.allowed).to.equal(true);
    expect(d.reason).to.equal(REASON_NO_ALLOW_POLICY);
  });

  it('ALLOW policies present and none matches: denied; one of several matching: allowed', () => {
    const get = allow([to({ methods: ['GET'] })]);
    const post = allow([to({ methods: ['POST'] })]);
    expect(allowed([post], request())).to.equal(false);
    expect(allowed([post, get], request())).to.equal(true);
  });

  it('DENY wins over a matching ALLOW', () => {
    const d = decide([allow([{}]), deny([to({ paths: ['/status/*'] })])], request());
    expect(d.allowed).to.equal(false);
    expect(d.reason).to.match(/^denied by DENY policy foo\//);
  });

  it('a DENY that does not match leaves ALLOW to decide', () => {
    expect(allowed([allow([{}]), deny([to({ paths: ['/admin'] })])], request())).to.equal(true);
    expect(allowed([allow([to({ paths: ['/x'] })]), deny([to({ paths: ['/admin'] })])], request())).to.equal(
      false,
    );
  });

  it('AUDIT only marks: it never allows or denies', () => {
    const a = audit([to({ paths: ['/status/*'] })]);
    let d = decide([a], request());
    expect(d.allowed).to.equal(true);
    expect(d.audit).to.equal(true);
    expect(d.auditPolicy).to.equal(`foo/${a.name}`);
    d = decide([a, allow([])], request());
    expect(d.allowed).to.equal(false);
    expect(d.audit).to.equal(true);
    d = decide([a], request({ path: '/other' }));
    expect(d.audit).to.equal(false);
  });

  it('CUSTOM is evaluated first: a matching CUSTOM policy denies with a clear reason', () => {
    const c = policy('CUSTOM', [to({ paths: ['/status/*'] })], { provider: 'opa' });
    const d = decide([c, allow([{}])], request());
    expect(d.allowed).to.equal(false);
    expect(d.reason).to.contain('CUSTOM').and.contain('"opa"').and.contain('not support');
    expect(allowed([c, allow([{}])], request({ path: '/public' }))).to.equal(true);
    // configurable: ignore CUSTOM policies
    const e = AuthzEngine.compile([c], { customAuthz: 'ignore' });
    expect(e.authorize(request()).allowed).to.equal(true);
  });

  it('dry-run policies are reported, never enforced', () => {
    const d = decide([deny([{}], { dryRun: true })], request());
    expect(d.allowed).to.equal(true);
    expect(d.shadowDenied).to.equal(true);
    const d2 = decide([allow([to({ paths: ['/x'] })], { dryRun: true })], request());
    expect(d2.allowed).to.equal(true);
    expect(d2.shadowDenied).to.equal(true);
  });

  it('reuses the decision object and the attributes object across calls', () => {
    const e = AuthzEngine.compile([allow([to({ methods: ['GET'] })])]);
    const out = new AuthzDecision();
    const a = request();
    expect(e.authorize(a, out)).to.equal(out);
    expect(out.allowed).to.equal(true);
    a.method = 'POST';
    e.authorize(a, out);
    expect(out.allowed).to.equal(false);
    expect(out.policy).to.equal('');
    a.reset();
    expect(a.method).to.equal('');
    expect(a.headers).to.deep.equal([]);
  });
});

describe('authz/engine: rule structure', () => {
  it('within a rule, from/to/when are ANDed', () => {
    const p = allow([
      {
        from: [{ source: { namespaces: ['bar'] } }],
        to: [{ operation: { methods: ['GET'] } }],
        when: [{ key: 'request.headers[x-env]', values: ['prod'] }],
      },
    ]);
    const h = ['X-Env', 'prod'];
    expect(allowed([p], request({ headers: h }))).to.equal(true);
    expect(allowed([p], request({ headers: h, method: 'POST' }))).to.equal(false);
    expect(allowed([p], request({ headers: h, sourcePrincipal: 'cluster.local/ns/baz/sa/x' }))).to.equal(
      false,
    );
    expect(allowed([p], request())).to.equal(false);
  });

  it('multiple `from` entries are ORed; fields inside one source are ANDed; values ORed', () => {
    const p = allow([
      {
        from: [
          { source: { namespaces: ['bar'], ipBlocks: ['10.0.0.0/24'] } },
          { source: { principals: ['cluster.local/ns/ops/sa/admin', 'cluster.local/ns/ops/sa/root'] } },
        ],
      },
    ]);
    expect(allowed([p], request())).to.equal(true);
    expect(allowed([p], request({ sourceIp: '10.9.0.1' }))).to.equal(false);
    expect(
      allowed([p], request({ sourceIp: '10.9.0.1', sourcePrincipal: 'cluster.local/ns/ops/sa/root' })),
    ).to.equal(true);
  });

  it('multiple `to` entries are ORed; multiple rules are ORed; multiple when are ANDed', () => {
    const p = allow([
      { to: [{ operation: { methods: ['GET'], paths: ['/a'] } }, { operation: { methods: ['POST'] } }] },
      when('request.headers[x-k]', ['1']),
    ]);
    expect(allowed([p], request({ path: '/a' }))).to.equal(true);
    expect(allowed([p], request({ path: '/b' }))).to.equal(false);
    expect(allowed([p], request({ path: '/b', method: 'POST' }))).to.equal(true);
    expect(allowed([p], request({ path: '/b', headers: ['x-k', '1'] }))).to.equal(true);
    const both = allow([
      {
        when: [
          { key: 'request.headers[a]', values: ['1'] },
          { key: 'request.headers[b]', values: ['2'] },
        ],
      },
    ]);
    expect(allowed([both], request({ headers: ['a', '1'] }))).to.equal(false);
    expect(allowed([both], request({ headers: ['a', '1', 'b', '2'] }))).to.equal(true);
  });

  it('values and notValues of one field are ANDed', () => {
    const p = allow([to({ paths: ['/api/*'], notPaths: ['/api/admin*'] })]);
    expect(allowed([p], request({ path: '/api/users' }))).to.equal(true);
    expect(allowed([p], request({ path: '/api/admin/x' }))).to.equal(false);
  });
});

describe('authz/engine: source fields', () => {
  const cases: [string, AuthzRule, Partial<AuthzAttributes>, Partial<AuthzAttributes>][] = [
    [
      'principals exact',
      from({ principals: ['cluster.local/ns/bar/sa/client'] }),
      {},
      { sourcePrincipal: 'cluster.local/ns/bar/sa/other' },
    ],
    [
      'principals prefix',
      from({ principals: ['cluster.local/ns/bar/*'] }),
      {},
      { sourcePrincipal: 'cluster.local/ns/baz/sa/client' },
    ],
    [
      'principals suffix',
      from({ principals: ['*/sa/client'] }),
      {},
      { sourcePrincipal: 'td/ns/bar/sa/other' },
    ],
    ['principals *: any mTLS peer', from({ principals: ['*'] }), {}, { sourcePrincipal: '' }],
    ['namespaces', from({ namespaces: ['bar'] }), {}, { sourcePrincipal: 'cluster.local/ns/barn/sa/client' }],
    [
      'namespaces prefix',
      from({ namespaces: ['ba*'] }),
      {},
      { sourcePrincipal: 'cluster.local/ns/foo/sa/x' },
    ],
    ['namespaces need mTLS', from({ namespaces: ['*'] }), {}, { sourcePrincipal: '' }],
    [
      'serviceAccounts',
      from({ serviceAccounts: ['bar/client'] }),
      {},
      { sourcePrincipal: 'cluster.local/ns/bar/sa/client2' },
    ],
    [
      'serviceAccounts in policy ns',
      from({ serviceAccounts: ['client'] }),
      { sourcePrincipal: 'td/ns/foo/sa/client' },
      { sourcePrincipal: 'td/ns/bar/sa/client' },
    ],
    ['ipBlocks CIDR', from({ ipBlocks: ['10.0.0.0/16'] }), {}, { sourceIp: '10.1.0.5' }],
    ['ipBlocks single IP', from({ ipBlocks: ['10.0.0.5'] }), {}, { sourceIp: '10.0.0.6' }],
    [
      'ipBlocks IPv4-mapped peer',
      from({ ipBlocks: ['10.0.0.0/8'] }),
      { sourceIp: '::ffff:10.2.3.4' },
      { sourceIp: '::ffff:11.2.3.4' },
    ],
    ['ipBlocks IPv6', from({ ipBlocks: ['fd00::/8'] }), { sourceIp: 'fd12::1' }, { sourceIp: 'fe80::1' }],
    [
      'remoteIpBlocks (original client)',
      from({ remoteIpBlocks: ['203.0.113.0/24'] }),
      { remoteIp: '203.0.113.9' },
      { remoteIp: '203.0.114.9' },
    ],
    [
      'requestPrincipals exact',
      from({ requestPrincipals: ['https://iss/alice'] }),
      { requestPrincipal: 'https://iss/alice' },
      { requestPrincipal: 'https://iss/bob' },
    ],
    [
      'requestPrincipals *: any JWT',
      from({ requestPrincipals: ['*'] }),
      { requestPrincipal: 'i/s' },
      { requestPrincipal: '' },
    ],
    [
      'requestPrincipals prefix',
      from({ requestPrincipals: ['https://iss/*'] }),
      { requestPrincipal: 'https://iss/x' },
      { requestPrincipal: 'https://other/x' },
    ],
  ];
  for (const [name, rule, ok, ko] of cases) {
    it(`${name}: matches and its not-form inverts`, () => {
      expect(allowed([allow([rule])], request(ok)), 'positive').to.equal(true);
      expect(allowed([allow([rule])], request({ ...ok, ...ko })), 'negative').to.equal(false);
      // the not-form: same values under not<Field>
      const src = rule.from![0]!.source as Record<string, string[]>;
      const [field, values] = Object.entries(src)[0]!;
      const notField = `not${field[0]!.toUpperCase()}${field.slice(1)}`;
      const notRule = from({ [notField]: values });
      expect(allowed([allow([notRule])], request(ok)), 'not positive').to.equal(false);
      expect(allowed([allow([notRule])], request({ ...ok, ...ko })), 'not negative').to.equal(true);
    });
  }

  it('remoteIpBlocks falls back to the connection address without X-Forwarded-For', () => {
    const p = allow([from({ remoteIpBlocks: ['10.0.0.0/24'] })]);
    expect(allowed([p], request())).to.equal(true);
    expect(allowed([p], request({ remoteIp: '192.0.2.1' }))).to.equal(false);
  });

  it('a DENY on notRequestPrincipals: ["*"] requires a JWT (Istio\'s documented pattern)', () => {
    const p = deny([from({ notRequestPrincipals: ['*'] })]);
    expect(allowed([p], request())).to.equal(false);
    expect(allowed([p], request({ requestPrincipal: 'iss/sub' }))).to.equal(true);
  });

  it('an ALLOW on requestPrincipals: ["*"] refuses requests without a token', () => {
    const p = allow([from({ requestPrincipals: ['*'] })]);
    expect(decide([p], request()).reason).to.equal(REASON_NOT_ALLOWED);
  });
});

describe('authz/engine: operation fields', () => {
  const cases: [string, AuthzRule, Partial<AuthzAttributes>, Partial<AuthzAttributes>][] = [
    [
      'hosts exact, case-insensitive',
      to({ hosts: ['HTTPBIN.foo.svc.cluster.local'] }),
      {},
      { host: 'other:8000' },
    ],
    [
      'hosts without port match host:port',
      to({ hosts: ['httpbin.foo.svc.cluster.local'] }),
      {},
      { host: 'httpbin.foo' },
    ],
    [
      'hosts with port match exactly',
      to({ hosts: ['httpbin.foo.svc.cluster.local:8000'] }),
      {},
      { host: 'httpbin.foo.svc.cluster.local:9000' },
    ],
    ['hosts suffix wildcard', to({ hosts: ['*.cluster.local'] }), {}, { host: 'example.com' }],
    ['hosts prefix wildcard', to({ hosts: ['httpbin.*'] }), {}, { host: 'ratings.foo' }],
    ['methods', to({ methods: ['GET', 'HEAD'] }), {}, { method: 'POST' }],
    ['methods are case-sensitive', to({ methods: ['GET'] }), {}, { method: 'get' }],
    ['paths exact', to({ paths: ['/status/200'] }), {}, { path: '/status/2000' }],
    ['paths prefix', to({ paths: ['/status/*'] }), {}, { path: '/statu' }],
    ['paths suffix', to({ paths: ['*/200'] }), {}, { path: '/status/201' }],
    ['paths *', to({ paths: ['*'] }), {}, { path: '' }],
    ['paths {*} one segment', to({ paths: ['/status/{*}'] }), {}, { path: '/status/200/x' }],
    ['paths {**} any segments', to({ paths: ['/{**}/200'] }), { path: '/a/b/200' }, { path: '/a/b/201' }],
    ['ports', to({ ports: ['8080', '9090'] }), {}, { destinationPort: 8081 }],
  ];
  for (const [name, rule, ok, ko] of cases) {
    it(`${name}: matches and its not-form inverts`, () => {
      expect(allowed([allow([rule])], request(ok)), 'positive').to.equal(true);
      expect(allowed([allow([rule])], request({ ...ok, ...ko })), 'negative').to.equal(false);
      const op = rule.to![0]!.operation as Record<string, string[]>;
      const [field, values] = Object.entries(op)[0]!;
      const notRule = to({ [`not${field[0]!.toUpperCase()}${field.slice(1)}`]: values });
      expect(allowed([allow([notRule])], request(ok)), 'not positive').to.equal(false);
      expect(allowed([allow([notRule])], request({ ...ok, ...ko })), 'not negative').to.equal(true);
    });
  }

  it('path templates follow Envoy: {*} needs a non-empty segment, {**} may be empty', () => {
    const one = allow([to({ paths: ['/foo/{*}'] })]);
    expect(allowed([one], request({ path: '/foo/bar' }))).to.equal(true);
    expect(allowed([one], request({ path: '/foo/' }))).to.equal(false);
    expect(allowed([one], request({ path: '/foo/bar/baz' }))).to.equal(false);
    const tail = allow([to({ paths: ['/foo/{**}/'] })]);
    for (const p of ['/foo/bar/', '/foo/bar/baz.txt/', '/foo//'])
      expect(allowed([tail], request({ path: p })), p).to.equal(true);
    expect(allowed([tail], request({ path: '/foo/bar' }))).to.equal(false);
    const mid = allow([to({ paths: ['/foo/{*}/bar/{**}'] })]);
    expect(allowed([mid], request({ path: '/foo/buzz/bar/' }))).to.equal(true);
    expect(allowed([mid], request({ path: '/foo/buzz/bar/baz' }))).to.equal(true);
    expect(allowed([mid], request({ path: '/foo/buzz/qux/baz' }))).to.equal(false);
  });

  it('hosts: IPv6 literal authorities keep their brackets', () => {
    const p = allow([to({ hosts: ['[::1]'] })]);
    expect(allowed([p], request({ host: '[::1]:8080' }))).to.equal(true);
    expect(allowed([p], request({ host: '[::1]' }))).to.equal(true);
  });
});

describe('authz/engine: when conditions', () => {
  const jwt = {
    iss: 'https://iss',
    sub: 'alice',
    aud: ['api', 'web'],
    azp: 'cli',
    groups: ['eng', 'ops'],
    org: { team: 'core' },
  };
  const cases: [string, AuthzRule, Partial<AuthzAttributes>, Partial<AuthzAttributes>][] = [
    [
      'request.headers exact',
      when('request.headers[User-Agent]', ['curl/8']),
      { headers: ['user-agent', 'curl/8'] },
      { headers: ['user-agent', 'curl/7'] },
    ],
    [
      'request.headers prefix',
      when('request.headers[x-v]', ['v1*']),
      { headers: ['X-V', 'v1.2'] },
      { headers: ['X-V', 'v2'] },
    ],
    [
      'request.headers *: present',
      when('request.headers[x-v]', ['*']),
      { headers: ['x-v', ''] },
      { headers: [] },
    ],
    [
      'request.headers repeated: any value',
      when('request.headers[x-v]', ['b']),
      { headers: ['x-v', 'a', 'x-v', 'b'] },
      { headers: ['x-v', 'a'] },
    ],
    ['source.ip', when('source.ip', ['10.0.0.0/24']), {}, { sourceIp: '10.0.9.1' }],
    [
      'remote.ip',
      when('remote.ip', ['198.51.100.7']),
      { remoteIp: '198.51.100.7' },
      { remoteIp: '198.51.100.8' },
    ],
    [
      'source.namespace',
      when('source.namespace', ['bar']),
      {},
      { sourcePrincipal: 'cluster.local/ns/qux/sa/client' },
    ],
    [
      'source.principal',
      when('source.principal', ['cluster.local/ns/bar/sa/client']),
      {},
      { sourcePrincipal: '' },
    ],
    [
      'source.serviceAccount',
      when('source.serviceAccount', ['bar/client']),
      {},
      { sourcePrincipal: 'cluster.local/ns/bar/sa/c' },
    ],
    [
      'request.auth.principal',
      when('request.auth.principal', ['https://iss/alice']),
      { requestPrincipal: 'https://iss/alice' },
      { requestPrincipal: '' },
    ],
    [
      'request.auth.audiences (list claim)',
      when('request.auth.audiences', ['web']),
      { claims: jwt },
      { claims: { ...jwt, aud: 'other' } },
    ],
    [
      'request.auth.presenter',
      when('request.auth.presenter', ['cli']),
      { claims: jwt },
      { claims: { ...jwt, azp: 'x' } },
    ],
    [
      'request.auth.claims string',
      when('request.auth.claims[iss]', ['https://iss']),
      { claims: jwt },
      { claims: null },
    ],
    [
      'request.auth.claims list: any element',
      when('request.auth.claims[groups]', ['ops']),
      { claims: jwt },
      { claims: { ...jwt, groups: ['eng'] } },
    ],
    [
      'request.auth.claims nested',
      when('request.auth.claims[org][team]', ['core']),
      { claims: jwt },
      { claims: { ...jwt, org: { team: 'edge' } } },
    ],
    ['destination.ip', when('destination.ip', ['10.0.1.0/24']), {}, { destinationIp: '10.0.2.7' }],
    ['destination.port', when('destination.port', ['8080']), {}, { destinationPort: 80 }],
    [
      'connection.sni',
      when('connection.sni', ['*.svc.cluster.local']),
      { sni: 'outbound_.8000_._.httpbin.foo.svc.cluster.local' },
      { sni: 'example.com' },
    ],
  ];
  for (const [name, rule, ok, ko] of cases) {
    it(`${name}: values match and notValues invert`, () => {
      expect(allowed([allow([rule])], request(ok)), 'positive').to.equal(true);
      expect(allowed([allow([rule])], request({ ...ok, ...ko })), 'negative').to.equal(false);
      const c = rule.when![0]!;
      const notRule = when(c.key, undefined, c.values);
      expect(allowed([allow([notRule])], request(ok)), 'not positive').to.equal(false);
      expect(allowed([allow([notRule])], request({ ...ok, ...ko })), 'not negative').to.equal(true);
    });
  }

  it('non-string claims never match (Istio supports string and list-of-string claims)', () => {
    const p = allow([when('request.auth.claims[admin]', ['true'])]);
    expect(allowed([p], request({ claims: { admin: true } }))).to.equal(false);
    expect(allowed([p], request({ claims: { admin: 'true' } }))).to.equal(true);
  });

  it('header names are case-insensitive, values are not; list elements are not trimmed (Envoy)', () => {
    const p = allow([when('request.headers[X-Team]', ['Core'])]);
    expect(allowed([p], request({ headers: ['x-team', 'Core'] }))).to.equal(true);
    expect(allowed([p], request({ headers: ['x-team', 'core'] }))).to.equal(false);
    expect(allowed([p], request({ headers: ['x-team', 'a,Core'] }))).to.equal(true);
    expect(allowed([p], request({ headers: ['x-team', 'a, Core'] }))).to.equal(false);
  });

  it('experimental.envoy.filters keys fail closed: never allow, always deny', () => {
    const key = 'experimental.envoy.filters.network.mysql_proxy[db.table]';
    expect(allowed([allow([when(key, ['[update]'])])], request())).to.equal(false);
    expect(allowed([deny([when(key, ['[update]'])])], request())).to.equal(false);
  });
});

describe('authz/engine: TCP connections (only the non-HTTP fields apply)', () => {
  it('ALLOW with only TCP fields works on TCP', () => {
    const p = allow([
      { from: [{ source: { namespaces: ['bar'] } }], to: [{ operation: { ports: ['9000'] } }] },
    ]);
    expect(allowed([p], tcp({ destinationPort: 9000 }))).to.equal(true);
    expect(allowed([p], tcp({ destinationPort: 9001 }))).to.equal(false);
  });

  it('an ALLOW rule using an HTTP-only field never matches TCP (the rule is dropped)', () => {
    const p = allow([to({ ports: ['9000'], methods: ['GET'] })]);
    expect(allowed([p], tcp({ destinationPort: 9000 }))).to.equal(false);
    expect(allowed([p], request({ destinationPort: 9000 }))).to.equal(true);
    // other rules of the same policy still apply
    const q = allow([to({ ports: ['9000'], methods: ['GET'] }), to({ ports: ['9001'] })]);
    expect(allowed([q], tcp({ destinationPort: 9001 }))).to.equal(true);
  });

  it('an ALLOW policy whose rules all use HTTP-only fields denies every TCP connection', () => {
    expect(allowed([allow([to({ paths: ['/x'] })])], tcp())).to.equal(false);
    expect(allowed([allow([when('request.headers[a]', ['b'])])], tcp())).to.equal(false);
    expect(allowed([allow([from({ requestPrincipals: ['*'] })])], tcp())).to.equal(false);
  });

  it('a DENY rule drops its HTTP-only fields on TCP, so it denies more (Istio: "more likely to deny")', () => {
    // only HTTP fields -> matches every TCP connection
    expect(allowed([deny([to({ methods: ['POST'] })])], tcp())).to.equal(false);
    // HTTP field plus a port -> denies connections on that port only
    const p = deny([to({ methods: ['POST'], ports: ['9000'] })]);
    expect(allowed([p], tcp({ destinationPort: 9000 }))).to.equal(false);
    expect(allowed([p], tcp({ destinationPort: 9001 }))).to.equal(true);
    // not-forms of HTTP fields are dropped too
    expect(
      allowed([deny([to({ notPaths: ['/healthz'], ports: ['9000'] })])], tcp({ destinationPort: 9000 })),
    ).to.equal(false);
    // a `when` on a header is dropped; the principal still applies
    const q = deny([
      {
        from: [{ source: { principals: ['cluster.local/ns/bar/sa/client'] } }],
        ...when('request.headers[a]', ['b']),
      },
    ]);
    expect(allowed([q], tcp())).to.equal(false);
    expect(allowed([q], tcp({ sourcePrincipal: 'cluster.local/ns/bar/sa/other' }))).to.equal(true);
  });

  it('AUDIT drops HTTP-only fields on TCP like DENY', () => {
    expect(decide([audit([to({ methods: ['GET'] })])], tcp()).audit).to.equal(true);
  });

  it('the same DENY rule still needs the HTTP field to match on HTTP', () => {
    const p = deny([to({ methods: ['POST'], ports: ['9000'] })]);
    expect(allowed([p], request({ destinationPort: 9000, method: 'GET' }))).to.equal(true);
    expect(allowed([p], request({ destinationPort: 9000, method: 'POST' }))).to.equal(false);
  });
});

describe('authz/engine: multiple policies and compile errors', () => {
  it('root-namespace, namespace and workload policies combine (all ALLOWs are ORed)', () => {
    const mesh = deny([from({ notNamespaces: ['bar', 'foo', 'istio-system'] })], {
      namespace: 'istio-system',
    });
    const ns = allow([from({ namespaces: ['bar'] }), to({ paths: ['/public/*'] })]);
    const wl = allow([to({ methods: ['GET'], paths: ['/status/*'] })]);
    expect(allowed([mesh, ns, wl], request())).to.equal(true);
    expect(allowed([mesh, ns, wl], request({ sourcePrincipal: 'td/ns/evil/sa/x' }))).to.equal(false);
    expect(allowed([mesh, ns, wl], request({ sourcePrincipal: 'td/ns/foo/sa/x', method: 'POST' }))).to.equal(
      false,
    );
    expect(allowed([mesh, ns, wl], request({ sourcePrincipal: '', path: '/public/a' }))).to.equal(false);
  });

  it('malformed values fail compilation with the field path', () => {
    expect(() => AuthzEngine.compile([allow([from({ ipBlocks: ['10.0.0.0/33'] })])]))
      .to.throw(AuthzCompileError)
      .with.property('path', 'policies[0].rules[0].from[0].source.ipBlocks[0]');
    expect(() => AuthzEngine.compile([allow([when('bogus.key', ['x'])])]))
      .to.throw(AuthzCompileError)
      .with.property('path', 'policies[0].rules[0].when[0].key');
    expect(() => AuthzEngine.compile([allow([to({ ports: ['http'] })])])).to.throw(/invalid port/);
  });

  it('absent attributes on a fresh AuthzAttributes never match a positive value', () => {
    const a = new AuthzAttributes();
    expect(allowed([allow([from({ principals: ['*'] })])], a)).to.equal(false);
    expect(allowed([allow([from({ ipBlocks: ['0.0.0.0/0'] })])], a)).to.equal(false);
    expect(allowed([allow([to({ hosts: ['*'] })])], a)).to.equal(false);
  });
});
