import { expect } from 'chai';
import { validateTables } from '../../src/tables/index.js';
import { C1, tables } from './helpers.js';

const base = () =>
  tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
    [C1]: [{ address: '127.0.0.1', port: 9 }],
  });

describe('tables contract: HTTP/2 and gRPC fields', () => {
  it('accepts upstreamProtocol http2/auto, maxConcurrentStreams and http2/grpc listeners', () => {
    for (const upstreamProtocol of ['http1', 'http2', 'auto'] as const) {
      const t = base();
      t.listeners[0]!.protocol = 'grpc';
      t.clusters[0]!.upstreamProtocol = upstreamProtocol;
      t.clusters[0]!.connectionPool = { maxConcurrentStreams: 50, http2MaxRequests: 100 };
      expect(validateTables(t).errors).to.deep.equal([]);
    }
    const bad = base() as unknown as { clusters: Array<Record<string, unknown>> };
    bad.clusters[0]!.upstreamProtocol = 'h3';
    expect(validateTables(bad).ok).to.equal(false);
  });

  it('accepts a gRPC-only fault abort and rejects an abort with neither status', () => {
    const t = base();
    t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!.fault = { abort: { grpcStatus: 14, percentage: 50 } };
    expect(validateTables(t).errors).to.deep.equal([]);
    t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!.fault = { abort: {} };
    expect(validateTables(t).errors.map((e) => `${e.path}: ${e.message}`)).to.include(
      'routeConfigs[0].virtualHosts[0].routes[0].fault.abort: set httpStatus or grpcStatus',
    );
    t.routeConfigs[0]!.virtualHosts[0]!.routes[0]!.fault = { abort: { grpcStatus: 17 } };
    expect(validateTables(t).ok).to.equal(false);
  });
});
