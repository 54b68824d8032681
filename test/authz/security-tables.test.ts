import { expect } from 'chai';
import { InboundSecurityRuntime } from '../../src/authz/index.js';
import { type InboundSecurity, validateInboundSecurity } from '../../src/tables/security.js';
import { request } from './helpers.js';

const good: InboundSecurity = {
  policies: [
    {
      name: 'deny-evil',
      namespace: 'istio-system',
      action: 'DENY',
      rules: [{ from: [{ source: { ipBlocks: ['203.0.113.0/24'] } }] }],
    },
    {
      name: 'httpbin',
      namespace: 'foo',
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/bar/sa/client'] } }],
          to: [{ operation: { methods: ['GET'], paths: ['/status/*'], ports: ['8080'] } }],
          when: [{ key: 'request.headers[x-env]', values: ['prod'] }],
        },
      ],
    },
  ],
  jwtRules: [
    {
      issuer: 'https://iss',
      jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}',
    },
  ],
  rateLimit: { workload: { maxTokens: 10, tokensPerFill: 10, fillIntervalMs: 1000 } },
  pathNormalization: 'MERGE_SLASHES',
};

describe('tables/security: the compiled inbound security section', () => {
  it('accepts a well-formed section', () => {
    const r = validateInboundSecurity(good);
    expect(r.errors).to.deep.equal([]);
    expect(r.ok).to.equal(true);
  });

  it('reports schema and semantic errors with paths', () => {
    const bad = structuredClone(good) as unknown as Record<string, unknown> & InboundSecurity;
    bad.policies![1]!.rules[0]!.from![0]!.source.ipBlocks = ['10.0.0.0/99'];
    bad.policies![1]!.rules[0]!.to![0]!.operation.ports = ['http'];
    bad.policies![1]!.rules[0]!.when![0]!.key = 'nope';
    bad.jwtRules = [{ issuer: 'x' }, { issuer: 'y', jwks: '{"keys":[]}' }];
    (bad as Record<string, unknown>).extra = 1;
    let r = validateInboundSecurity(bad);
    expect(r.ok).to.equal(false);
    expect(r.errors.map((e) => e.path)).to.deep.equal(['extra']);
    delete (bad as Record<string, unknown>).extra;
    r = validateInboundSecurity(bad);
    expect(r.errors.map((e) => e.path)).to.deep.equal([
      'policies[1].rules[0].from[0].source.ipBlocks[0]',
      'policies[1].rules[0].to[0].operation.ports[0]',
      'policies[1].rules[0].when[0].key',
      'jwtRules[0]',
      'jwtRules[1].jwks',
    ]);
    const noMax = validateInboundSecurity({
      rateLimit: { workload: { maxTokens: 0, tokensPerFill: 1, fillIntervalMs: 1 } },
    });
    expect(noMax.errors[0]?.path).to.equal('rateLimit.workload.maxTokens');
  });

  it('the runtime compiles a section and swaps versions, keeping unchanged JWT rules', () => {
    const s = structuredClone(good);
    const rt = new InboundSecurityRuntime(s);
    try {
      expect(rt.pathNormalization).to.equal('MERGE_SLASHES');
      const a = request({ headers: ['x-env', 'prod'] });
      expect(rt.engine.authorize(a).allowed).to.equal(true);
      a.sourceIp = '203.0.113.7';
      expect(rt.engine.authorize(a).allowed).to.equal(false);
      const jwt = rt.jwt;
      rt.apply({ ...s, policies: [] });
      expect(rt.jwt).to.equal(jwt);
      expect(rt.engine.authorize(a).allowed).to.equal(true);
      expect(() =>
        rt.apply({
          policies: [
            {
              name: 'x',
              namespace: 'y',
              action: 'ALLOW',
              rules: [{ to: [{ operation: { ports: ['x'] } }] }],
            },
          ],
        }),
      ).to.throw();
      expect(rt.engine.authorize(a).allowed, 'previous version kept').to.equal(true);
    } finally {
      rt.close();
    }
  });
});

describe('tables document with a security section', () => {
  it('validates the section as part of the tables and names the path of an error', async () => {
    const { validateTables, TABLES_API_VERSION } = await import('../../src/tables/index.js');
    const base = {
      apiVersion: TABLES_API_VERSION,
      version: '1',
      listeners: [],
      routeConfigs: [],
      clusters: [],
    };
    expect(
      validateTables({
        ...base,
        security: { policies: [{ name: 'p', namespace: 'ns', action: 'ALLOW', rules: [{}] }] },
      }).ok,
    ).to.equal(true);
    const bad = validateTables({
      ...base,
      security: { policies: [{ name: 'p', namespace: 'ns', action: 'PERMIT' }] },
    });
    expect(bad.ok).to.equal(false);
    expect(bad.errors.map((e) => e.path).join(' ')).to.contain('security.policies[0].action');
  });
});
