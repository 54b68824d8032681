import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../../src/util/paths.js';
import { analyze } from '../../src/validation/analyze.js';

const docs = (text: string) =>
  parseAllDocuments(text).map((d, i) => ({ source: `t#${i}`, object: d.toJS() }));

const warningsOf = (text: string) =>
  analyze(docs(text)).flatMap((r) =>
    r.findings.filter((f) => f.severity === 'warning').map((f) => `${r.ref.name} ${f.path}: ${f.message}`),
  );

describe('isthmus analyze: cross-resource warnings', () => {
  it('warns about a subset no DestinationRule defines, resolving short names per namespace', () => {
    const w = warningsOf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews.shop.svc.cluster.local, subset: v9}
      weight: 50
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
`);
    expect(w).to.deep.equal([
      'reviews spec.http[0].route[1].destination.subset: subset "v9" of host "reviews.shop.svc.cluster.local" is not defined by any DestinationRule',
    ]);
  });

  it('warns about a gateway that does not exist, and not about one that does', () => {
    const w = warningsOf(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: shop}
spec:
  hosts: ["shop.example.com"]
  gateways: [web, other/missing]
  http:
  - route:
    - destination: {host: front}
`);
    expect(w).to.deep.equal([
      'front spec.gateways[1]: gateway "other/missing" is not defined by any Gateway',
    ]);
  });

  it('warns when two VirtualServices claim the same host on the same gateway', () => {
    const vs = (name: string, ns: string, host: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: ${ns}}
spec:
  hosts: [${host}]
  http:
  - route:
    - destination: {host: ratings.shop.svc.cluster.local}
`;
    const w = warningsOf(
      [
        vs('a', 'shop', 'ratings'),
        vs('b', 'other', 'ratings.shop.svc.cluster.local'),
        vs('c', 'other', 'ratings'),
      ].join('---'),
    );
    expect(w).to.have.length(2);
    expect(w[0]).to.contain(
      'a spec.hosts: host "ratings.shop.svc.cluster.local" on gateway "mesh" is also claimed by VirtualService other/b',
    );
    expect(w[1]).to.contain('b spec.hosts');
  });
});

describe('isthmus analyze (the command)', function () {
  this.timeout(60_000);
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'isthmus.js'), 'analyze', ...args], {
      encoding: 'utf8',
    });
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'isthmus-analyze-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 on the valid fixtures directory', () => {
    const res = run('-f', join(PROJECT_ROOT, 'test/validation/fixtures/valid'));
    expect(res.stderr).to.equal('');
    expect(res.status, res.stdout).to.equal(0);
  });

  it('exits non-zero and prints istioctl-style lines: level, [code], (kind namespace/name origin), path and reason', () => {
    const file = join(PROJECT_ROOT, 'test/validation/fixtures/invalid/virtualservice/negative-weight.yaml');
    const res = run('-f', file);
    expect(res.status).to.equal(1);
    const lines = res.stdout.split('\n').filter((l) => /^(Error|Warning) /.test(l));
    expect(lines).to.deep.equal([
      `Error [IST0106] (VirtualService shop/reviews ${file}#0) spec.http[0].route[1].weight: must be >= 0`,
      `Warning [IST0101] (VirtualService shop/reviews ${file}#0) spec.http[0].route[0].destination.subset: subset "v1" of host "reviews" is not defined by any DestinationRule`,
      `Warning [IST0101] (VirtualService shop/reviews ${file}#0) spec.http[0].route[1].destination.subset: subset "v2" of host "reviews" is not defined by any DestinationRule`,
    ]);
    expect(res.stdout).to.contain('1 mesh resources checked: 1 error(s), 2 warning(s)');
  });

  it('prints IST0109 for VirtualServices claiming one host, and exits 0 on warnings alone', () => {
    const file = join(dir, 'conflict.yaml');
    const vs = (name: string) =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  hosts: [ratings]\n  http:\n  - route:\n    - destination: {host: ratings}\n`;
    writeFileSync(file, `${vs('a')}---\n${vs('b')}`);
    const res = run('-f', file);
    expect(res.status, res.stdout).to.equal(0);
    const lines = res.stdout.split('\n').filter((l) => l.startsWith('Warning '));
    expect(lines).to.deep.equal([
      `Warning [IST0109] (VirtualService shop/a ${file}#0) spec.hosts: host "ratings.shop.svc.cluster.local" on gateway "mesh" is also claimed by VirtualService shop/b; only one of them will be used`,
      `Warning [IST0109] (VirtualService shop/b ${file}#1) spec.hosts: host "ratings.shop.svc.cluster.local" on gateway "mesh" is also claimed by VirtualService shop/a; only one of them will be used`,
    ]);
  });

  it('gives each finding its Istio code and code name in -o json', () => {
    const file = join(PROJECT_ROOT, 'test/validation/fixtures/invalid/virtualservice/negative-weight.yaml');
    const res = run('-f', file, '-o', 'json');
    expect(res.status).to.equal(1);
    const out = JSON.parse(res.stdout) as {
      results: Array<{ findings: Array<{ path: string; code: string; codeName: string }> }>;
      errors: number;
      warnings: number;
    };
    expect(out.results[0]!.findings.map((f) => `${f.code} ${f.codeName} ${f.path}`)).to.deep.equal([
      'IST0106 SchemaValidationError spec.http[0].route[1].weight',
      'IST0101 ReferencedResourceNotFound spec.http[0].route[0].destination.subset',
      'IST0101 ReferencedResourceNotFound spec.http[0].route[1].destination.subset',
    ]);
    expect([out.errors, out.warnings]).to.deep.equal([1, 2]);
  });

  it('refuses an unknown --output format, naming it', () => {
    const file = join(PROJECT_ROOT, 'test/validation/fixtures/invalid/virtualservice/negative-weight.yaml');
    const res = run('-f', file, '-o', 'yaml');
    expect(res.status).to.not.equal(0);
    expect(res.stderr).to.contain('--output "yaml" is not supported; use text or json');
  });

  it('reports malformed YAML with the file and document index instead of crashing', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'apiVersion: networking.istio.io/v1\nkind: VirtualService\n---\nspec: [unclosed\n');
    const res = run('-f', file);
    expect(res.status).to.equal(1);
    expect(res.stdout).to.match(/broken\.yaml#1: invalid YAML/);
    expect(res.stderr).to.equal('');
  });

  it('reports a missing path clearly', () => {
    const res = run('-f', join(dir, 'nope.yaml'));
    expect(res.status).to.equal(1);
    expect(res.stdout).to.contain('nope.yaml: no such file or directory');
  });
});
