/**
 * DestinationRule traffic policy -> cluster table fields (the pure compiler step):
 * load balancer, consistent hash, locality load balancing and outlier detection.
 */
import { expect } from 'chai';
import type { TrafficPolicy } from '../../src/api/networking/destination-rule.js';
import { podLocality } from '../../src/compiler/endpoints.js';
import { clusterSettings } from '../../src/compiler/traffic-policy.js';

function compile(p: TrafficPolicy): { out: ReturnType<typeof clusterSettings>; warnings: string[] } {
  const warnings: string[] = [];
  const out = clusterSettings(p, 'DestinationRule shop/reviews', (_r, m) => warnings.push(m));
  return { out, warnings };
}

describe('compiler: DestinationRule traffic policy -> cluster', () => {
  it('maps simple load balancers (LEAST_CONN is LEAST_REQUEST)', () => {
    expect(compile({ loadBalancer: { simple: 'LEAST_CONN' } }).out.lbPolicy).to.equal('LEAST_REQUEST');
    expect(compile({ loadBalancer: { simple: 'PASSTHROUGH' } }).out.lbPolicy).to.equal('PASSTHROUGH');
    expect(compile({ loadBalancer: { simple: 'RANDOM' } }).out.lbPolicy).to.equal('RANDOM');
  });

  it('consistentHash by header: RING_HASH with the lowercased header and ringHash.minimumRingSize', () => {
    const { out } = compile({
      loadBalancer: { consistentHash: { httpHeaderName: 'X-User', ringHash: { minimumRingSize: 2048 } } },
    });
    expect(out.lbPolicy).to.equal('RING_HASH');
    expect(out.consistentHash).to.deep.equal({ httpHeaderName: 'x-user', minimumRingSize: 2048 });
  });

  it('consistentHash: the deprecated minimumRingSize still applies', () => {
    const { out } = compile({
      loadBalancer: { consistentHash: { useSourceIp: true, minimumRingSize: 4096 } },
    });
    expect(out.consistentHash).to.deep.equal({ useSourceIp: true, minimumRingSize: 4096 });
  });

  it('consistentHash by cookie with a TTL, on MAGLEV with its table size', () => {
    const { out } = compile({
      loadBalancer: {
        consistentHash: {
          httpCookie: {
            name: 'session',
            path: '/',
            ttl: '1h',
            attributes: [{ name: 'SameSite', value: 'Strict' }],
          },
          maglev: { tableSize: 131 },
        },
      },
    });
    expect(out.lbPolicy).to.equal('MAGLEV');
    expect(out.consistentHash).to.deep.equal({
      httpCookie: {
        name: 'session',
        path: '/',
        ttlMs: 3_600_000,
        attributes: [{ name: 'SameSite', value: 'Strict' }],
      },
      tableSize: 131,
    });
  });

  it('consistentHash by query parameter', () => {
    const { out } = compile({ loadBalancer: { consistentHash: { httpQueryParameterName: 'user' } } });
    expect(out.consistentHash).to.deep.equal({ httpQueryParameterName: 'user' });
  });

  it('consistentHash without a key warns and keeps the default balancer', () => {
    const { out, warnings } = compile({ loadBalancer: { consistentHash: {} } });
    expect(out.lbPolicy).to.equal(undefined);
    expect(out.consistentHash).to.equal(undefined);
    expect(warnings).to.deep.equal([
      'loadBalancer.consistentHash has no hash key; using the default balancer',
    ]);
  });

  it('locality failover is on with outlier detection only (Istio), with failover regions', () => {
    expect(compile({}).out.localityLb).to.equal(undefined);
    expect(compile({ outlierDetection: {} }).out.localityLb).to.deep.equal({});
    const { out } = compile({
      outlierDetection: { consecutive5xxErrors: 3 },
      loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'eu-west' }] } },
    });
    expect(out.localityLb).to.deep.equal({ failover: [{ from: 'us-east', to: 'eu-west' }] });
    expect(
      compile({ loadBalancer: { localityLbSetting: { failover: [{ from: 'us-east', to: 'eu-west' }] } } }).out
        .localityLb,
    ).to.equal(undefined);
  });

  it('locality distribute applies without outlier detection; enabled: false turns locality off', () => {
    const distribute = [{ from: 'us-east/*', to: { 'us-east/*': 80, 'eu-west/*': 20 } }];
    expect(compile({ loadBalancer: { localityLbSetting: { distribute } } }).out.localityLb).to.deep.equal({
      distribute,
    });
    expect(
      compile({ outlierDetection: {}, loadBalancer: { localityLbSetting: { enabled: false } } }).out
        .localityLb,
    ).to.equal(undefined);
  });

  it('outlier detection fields in milliseconds; the deprecated consecutiveErrors is consecutive5xxErrors', () => {
    const { out } = compile({
      outlierDetection: {
        consecutiveErrors: 7,
        consecutiveGatewayErrors: 2,
        interval: '5s',
        baseEjectionTime: '1m',
        maxEjectionPercent: 50,
        minHealthPercent: 30,
      },
    });
    expect(out.outlierDetection).to.deep.equal({
      consecutive5xxErrors: 7,
      consecutiveGatewayErrors: 2,
      intervalMs: 5000,
      baseEjectionTimeMs: 60_000,
      maxEjectionPercent: 50,
      minHealthPercent: 30,
    });
  });
});

describe('compiler: the proxy node locality', () => {
  it("comes from Istio's istio-locality pod label (region.zone.subzone)", () => {
    expect(podLocality({ app: 'x', 'istio-locality': 'us-east.us-east-1a.rack7' })).to.deep.equal({
      region: 'us-east',
      zone: 'us-east-1a',
      subzone: 'rack7',
    });
    expect(podLocality({ 'istio-locality': 'eu-west' })).to.deep.equal({ region: 'eu-west' });
    expect(podLocality({ app: 'x' })).to.equal(undefined);
  });
});
