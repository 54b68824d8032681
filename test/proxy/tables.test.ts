import { expect } from 'chai';
import { clusterName, parseClusterName, validateEndpoints, validateTables } from '../../src/tables/index.js';
import { C1, C2, tables } from './helpers.js';

const ok = () =>
  tables([{ name: 'r0', forward: { clusters: [{ cluster: C1, weight: 100 }] } }], {
    [C1]: [{ address: '127.0.0.1', port: 9 }],
  });

function pathsOf(json: unknown): string[] {
  const r = validateTables(json);
  expect(r.ok).to.equal(false);
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

describe('tables contract: validateTables', () => {
  it('accepts a well-formed config', () => {
    const r = validateTables(ok());
    expect(r.errors).to.deep.equal([]);
    expect(r.ok).to.equal(true);
  });

  it('rejects a wrong apiVersion and unknown fields with their paths', () => {
    const t = ok() as unknown as Record<string, unknown>;
    t.apiVersion = 'isthmus.io/tables/v0';
    (t.listeners as Array<Record<string, unknown>>)[0]!.bogus = 1;
    const errs = pathsOf(t);
    expect(errs).to.include('apiVersion: must be "isthmus.io/tables/v1"');
    expect(errs).to.include('listeners[0].bogus: unknown field');
  });

  it('names the path of a missing required field', () => {
    const t = ok() as unknown as { routeConfigs: Array<Record<string, unknown>> };
    delete t.routeConfigs[0]!.virtualHosts;
    expect(pathsOf(t)).to.include('routeConfigs[0].virtualHosts: required field missing');
  });

  it('rejects an invalid RE2 regex (lookahead) at its path', () => {
    const t = ok();
    t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!.match = { path: { regex: '/(?=x)' } };
    const errs = pathsOf(t);
    expect(
      errs.some((e) =>
        e.startsWith('routeConfigs[0].virtualHosts[0].routes[0].match.path.regex: invalid RE2'),
      ),
    ).to.be.true;
  });

  it('rejects references to unknown clusters and zero total weight', () => {
    const t = ok();
    t.routeConfigs[0]!.virtualHosts[0]!.routes.push({
      forward: { clusters: [{ cluster: 'nope', weight: 0 }] },
    });
    const errs = pathsOf(t);
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[1].forward.clusters[0].cluster: unknown cluster "nope"',
    );
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[1].forward.clusters: total weight must be > 0',
    );
  });

  it('requires exactly one action and one string matcher kind', () => {
    const t = ok();
    const r = t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!;
    r.directResponse = { status: 200 };
    r.match = { path: { exact: '/a', prefix: '/b' } };
    const errs = pathsOf(t);
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[0]: exactly one of forward, redirect, directResponse is required',
    );
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[0].match.path: exactly one of exact, prefix, suffix, regex is required',
    );
  });

  it('rejects a prefix rewrite without a prefix match, and duplicate domains', () => {
    const t = ok();
    t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!.forward!.rewrite = { pathPrefix: '/x' };
    t.routeConfigs[0]!.virtualHosts.push({ name: 'dup', domains: ['reviews'], routes: [] });
    const errs = pathsOf(t);
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[0].forward.rewrite.pathPrefix: needs a prefix path match',
    );
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[1].domains[0]: domain "reviews" already served by virtual host "reviews.shop.svc.cluster.local:9080"',
    );
  });

  it('rejects a listener pointing at an unknown route config', () => {
    const t = ok();
    t.listeners.push({
      name: 'in',
      direction: 'inbound',
      port: 15006,
      protocol: 'http',
      routeConfig: 'missing',
    });
    expect(pathsOf(t)).to.include('listeners[1].routeConfig: unknown route config "missing"');
  });

  it('rejects header operations that could split the HTTP message', () => {
    const t = ok();
    t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!.responseHeaders = {
      set: { 'x-ok': 'evil\r\nset-cookie: a=b', 'bad name': 'v' },
    };
    const errs = pathsOf(t);
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[0].responseHeaders.set["x-ok"]: header value must not contain control characters',
    );
    expect(errs).to.include(
      'routeConfigs[0].virtualHosts[0].routes[0].responseHeaders.set["bad name"]: header name must be an HTTP token',
    );
  });

  it('does not throw on garbage', () => {
    for (const v of [null, 42, 'x', [], { apiVersion: 'isthmus.io/tables/v1' }]) {
      expect(validateTables(v).ok).to.equal(false);
    }
  });
});

describe('tables contract: validateEndpoints', () => {
  it('accepts an endpoint table and rejects duplicates by path', () => {
    const good = {
      apiVersion: 'isthmus.io/endpoints/v1',
      version: 'e1',
      clusters: { [C1]: [{ address: '10.0.0.1', port: 9080 }] },
    };
    expect(validateEndpoints(good).ok).to.equal(true);
    const dup = {
      ...good,
      clusters: {
        [C2]: [
          { address: '10.0.0.1', port: 9080 },
          { address: '10.0.0.1', port: 9080 },
        ],
      },
    };
    const r = validateEndpoints(dup);
    expect(r.ok).to.equal(false);
    expect(r.errors[0]!.path).to.equal(`clusters[${JSON.stringify(C2)}][1]`);
  });

  it('rejects an unknown health value', () => {
    const bad = {
      apiVersion: 'isthmus.io/endpoints/v1',
      version: 'e1',
      clusters: { a: [{ address: 'x', port: 1, health: 'SICK' }] },
    };
    const r = validateEndpoints(bad);
    expect(r.ok).to.equal(false);
    expect(r.errors[0]!.path).to.equal('clusters.a[0].health');
  });
});

describe('tables contract: cluster names', () => {
  it('builds and parses Envoy-style names', () => {
    const key = {
      direction: 'outbound' as const,
      port: 9080,
      subset: 'v1',
      host: 'reviews.shop.svc.cluster.local',
    };
    expect(clusterName(key)).to.equal(C1);
    expect(parseClusterName(C1)).to.deep.equal(key);
    expect(parseClusterName('inbound|9080||')).to.deep.equal({
      direction: 'inbound',
      port: 9080,
      subset: '',
      host: '',
    });
    expect(parseClusterName('PassthroughCluster')).to.equal(undefined);
  });
});
