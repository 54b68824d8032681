/**
 * The `security` section of the compiled tables: which AuthorizationPolicies and
 * RequestAuthentications apply to a workload (root namespace, namespace, selector, targetRef),
 * the conversion to the tables shape (dry run, jwt timeout), rate limits from pod annotations,
 * determinism and warnings.
 */
import { expect } from 'chai';
import { affectedWorkloads, compileForWorkload } from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { WorkloadIdentity } from '../../src/registry/types.js';
import { workloadKey, workloadsFromPods } from '../../src/registry/workloads.js';
import { validateTables } from '../../src/tables/index.js';

const JWKS = JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k1', alg: 'HS256' }] });

function pod(
  ns: string,
  name: string,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels, annotations },
    spec: { serviceAccountName: labels.app ?? 'default', containers: [{ name: 'app', image: 'x' }] },
    status: { podIP: '10.0.0.5' },
  };
}

function service(ns: string, name: string, selector: Record<string, string>) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { clusterIP: '10.96.0.20', selector, ports: [{ name: 'http', port: 9080 }] },
  };
}

function ap(ns: string, name: string, spec: Record<string, unknown>, annotations?: Record<string, string>) {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec,
  };
}

function ra(ns: string, name: string, spec: Record<string, unknown>) {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name, namespace: ns },
    spec,
  };
}

const REVIEWS: WorkloadIdentity = {
  name: 'reviews-v1',
  namespace: 'shop',
  labels: { app: 'reviews', version: 'v1' },
  serviceAccount: 'reviews',
};

const BASE = [
  service('shop', 'reviews', { app: 'reviews' }),
  service('shop', 'ratings', { app: 'ratings' }),
  pod('shop', 'reviews-v1-abc', { app: 'reviews', version: 'v1' }),
];

const names = (objects: unknown[], w: WorkloadIdentity = REVIEWS) =>
  (compileForWorkload(buildSnapshot(objects), w).tables.security?.policies ?? []).map(
    (p) => `${p.namespace}/${p.name}`,
  );

describe('compiler: inbound security section', () => {
  it('emits no section (and the same version) without security objects', () => {
    const a = compileForWorkload(buildSnapshot(BASE), REVIEWS);
    expect(a.tables.security).to.equal(undefined);
    const withOther = compileForWorkload(
      buildSnapshot([...BASE, ap('other', 'x', { rules: [{}] })]),
      REVIEWS,
    );
    expect(withOther.tables.security).to.equal(undefined);
    expect(withOther.tables.version).to.equal(a.tables.version);
  });

  it('selects root-namespace, namespace-wide and matching-selector policies only', () => {
    const objects = [
      ...BASE,
      ap('istio-system', 'mesh-wide', { rules: [{}] }),
      ap('istio-system', 'root-selector-match', {
        selector: { matchLabels: { app: 'reviews' } },
        rules: [{}],
      }),
      ap('istio-system', 'root-selector-miss', {
        selector: { matchLabels: { app: 'ratings' } },
        rules: [{}],
      }),
      ap('shop', 'ns-wide', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
      ap('shop', 'selected', { selector: { matchLabels: { app: 'reviews', version: 'v1' } }, rules: [{}] }),
      ap('shop', 'not-selected', {
        selector: { matchLabels: { app: 'reviews', version: 'v2' } },
        rules: [{}],
      }),
      ap('other', 'other-ns', {}),
    ];
    expect(names(objects)).to.deep.equal([
      'istio-system/mesh-wide',
      'istio-system/root-selector-match',
      'shop/ns-wide',
      'shop/selected',
    ]);
  });

  it('targetRef to a Service applies to the workloads backing it; other kinds are skipped with a warning', () => {
    const objects = [
      ...BASE,
      ap('shop', 'to-reviews', { targetRef: { kind: 'Service', group: '', name: 'reviews' }, rules: [{}] }),
      ap('shop', 'to-ratings', {
        targetRefs: [{ kind: 'Service', group: '', name: 'ratings' }],
        rules: [{}],
      }),
      ap('shop', 'to-gateway', {
        targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'gw' },
        rules: [{}],
      }),
      ap('shop', 'to-missing', { targetRef: { kind: 'Service', name: 'nope' }, rules: [{}] }),
    ];
    const r = compileForWorkload(buildSnapshot(objects), REVIEWS);
    expect((r.tables.security?.policies ?? []).map((p) => p.name)).to.deep.equal(['to-reviews']);
    const msgs = r.warnings
      .filter((w) => w.resource.startsWith('AuthorizationPolicy'))
      .map((w) => w.resource);
    expect(msgs).to.deep.equal([
      'AuthorizationPolicy shop/to-gateway',
      'AuthorizationPolicy shop/to-missing',
    ]);
  });

  it('converts the policy: default action ALLOW, rules as written, dry-run annotation, CUSTOM provider', () => {
    const rules = [
      {
        from: [{ source: { principals: ['cluster.local/ns/shop/sa/productpage'], notNamespaces: ['dev'] } }],
        to: [{ operation: { methods: ['GET'], paths: ['/api/*'], ports: ['9080'] } }],
        when: [{ key: 'request.headers[x-user]', values: ['alice'] }],
      },
    ];
    const objects = [
      ...BASE,
      ap('shop', 'a', { rules }),
      ap('shop', 'b', { action: 'DENY', rules: [{}] }, { 'istio.io/dry-run': 'true' }),
      ap('shop', 'c', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] }),
      ap('shop', 'd', {}),
    ];
    const r = compileForWorkload(buildSnapshot(objects), REVIEWS);
    expect(r.tables.security?.policies).to.deep.equal([
      { name: 'a', namespace: 'shop', action: 'ALLOW', rules },
      { name: 'b', namespace: 'shop', action: 'DENY', dryRun: true, rules: [{}] },
      { name: 'c', namespace: 'shop', action: 'CUSTOM', provider: 'opa', rules: [{}] },
      { name: 'd', namespace: 'shop', action: 'ALLOW', rules: [] },
    ]);
    expect(validateTables(r.tables).ok).to.equal(true);
  });

  it('skips a policy the tables would reject, with a warning, keeping the others', () => {
    const objects = [
      ...BASE,
      ap('shop', 'bad', { rules: [{ when: [{ key: 'request.bogus', values: ['x'] }] }] }),
      ap('shop', 'good', { rules: [{}] }),
    ];
    const r = compileForWorkload(buildSnapshot(objects), REVIEWS);
    expect((r.tables.security?.policies ?? []).map((p) => p.name)).to.deep.equal(['good']);
    expect(r.warnings.some((w) => w.resource === 'AuthorizationPolicy shop/bad')).to.equal(true);
    expect(validateTables(r.tables).ok).to.equal(true);
  });

  it('merges the jwtRules of the RequestAuthentications that apply; timeout in ms', () => {
    const objects = [
      ...BASE,
      ra('istio-system', 'mesh', { jwtRules: [{ issuer: 'https://mesh', jwksUri: 'https://mesh/jwks' }] }),
      ra('shop', 'reviews', {
        selector: { matchLabels: { app: 'reviews' } },
        jwtRules: [
          {
            issuer: 'https://a',
            jwks: JWKS,
            audiences: ['reviews'],
            fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }],
            forwardOriginalToken: true,
            outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
            timeout: '1.5s',
          },
        ],
      }),
      ra('shop', 'ratings', {
        selector: { matchLabels: { app: 'ratings' } },
        jwtRules: [{ issuer: 'x', jwks: JWKS }],
      }),
    ];
    const r = compileForWorkload(buildSnapshot(objects), REVIEWS);
    expect(r.tables.security?.jwtRules).to.deep.equal([
      { issuer: 'https://mesh', jwksUri: 'https://mesh/jwks' },
      {
        issuer: 'https://a',
        jwks: JWKS,
        audiences: ['reviews'],
        fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }],
        forwardOriginalToken: true,
        outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
        timeoutMs: 1500,
      },
    ]);
    expect(validateTables(r.tables).ok).to.equal(true);
  });

  it('reads rate limits from the pod annotations (and warns about bad ones)', () => {
    const objects = [
      ...BASE,
      pod(
        'shop',
        'ratings-v1-x',
        { app: 'ratings' },
        {
          'isthmus.io/local-rate-limit': '100/s,burst=20',
          'isthmus.io/local-rate-limit-routes': 'slow=5/1s; broken=abc',
          'unrelated.io/thing': 'x',
        },
      ),
    ];
    const snap = buildSnapshot(objects);
    const ws = workloadsFromPods(objects);
    const ratings = ws.find((w) => w.labels.app === 'ratings')!;
    expect(ratings.annotations).to.deep.equal({
      'isthmus.io/local-rate-limit': '100/s,burst=20',
      'isthmus.io/local-rate-limit-routes': 'slow=5/1s; broken=abc',
    });
    const reviews = ws.find((w) => w.labels.app === 'reviews')!;
    expect(reviews.annotations).to.equal(undefined);
    expect(workloadKey(reviews)).to.equal('shop|reviews|app=reviews,version=v1');
    const r = compileForWorkload(snap, ratings);
    expect(r.tables.security?.rateLimit).to.deep.equal({
      workload: { maxTokens: 20, tokensPerFill: 100, fillIntervalMs: 1000 },
      routes: { slow: { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 1000 } },
    });
    expect(r.warnings.filter((w) => w.resource === 'Workload shop/ratings-v1-x')).to.have.length(1);
    expect(compileForWorkload(snap, reviews).tables.security).to.equal(undefined);
  });

  it('is deterministic: object order does not change the output', () => {
    const objects = [
      ...BASE,
      ap('shop', 'b', { rules: [{ to: [{ operation: { paths: ['/b'] } }] }] }),
      ap('istio-system', 'z', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['1.2.3.4'] } }] }] }),
      ap('shop', 'a', { rules: [{}] }),
      ra('shop', 'r', { jwtRules: [{ issuer: 'x', jwks: JWKS }] }),
    ];
    const one = compileForWorkload(buildSnapshot(objects), REVIEWS).tables;
    const two = compileForWorkload(buildSnapshot([...objects].reverse()), REVIEWS).tables;
    expect(JSON.stringify(two)).to.equal(JSON.stringify(one));
    expect(one.security?.policies?.map((p) => `${p.namespace}/${p.name}`)).to.deep.equal([
      'istio-system/z',
      'shop/a',
      'shop/b',
    ]);
    // A policy change changes the version.
    const three = compileForWorkload(buildSnapshot(objects.slice(0, -1)), REVIEWS).tables;
    expect(three.version).to.not.equal(one.version);
  });

  it('pushes AuthorizationPolicy / RequestAuthentication changes to the workloads of that namespace (root: all)', () => {
    const other: WorkloadIdentity = {
      name: 'web',
      namespace: 'front',
      labels: { app: 'web' },
      serviceAccount: 'web',
    };
    const before = buildSnapshot(BASE);
    const names = (objects: unknown[]) =>
      affectedWorkloads(before, buildSnapshot([...BASE, ...objects]), [REVIEWS, other]).tables.map(
        (w) => w.name,
      );
    expect(names([ap('shop', 'x', { rules: [{}] })])).to.deep.equal(['reviews-v1']);
    expect(names([ra('shop', 'y', { jwtRules: [{ issuer: 'x', jwks: JWKS }] })])).to.deep.equal([
      'reviews-v1',
    ]);
    expect(names([ap('istio-system', 'z', {})])).to.deep.equal(['reviews-v1', 'web']);
  });
});
