/**
 * The mesh-wide access log in the compiled tables: copied from MeshSettings into
 * `telemetry.accessLog` (valid for the proxy's validator, deterministic, part of the version),
 * absent when the mesh has none (so outputs without it are unchanged).
 */
import { expect } from 'chai';
import { compileForWorkload } from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { MeshSettings, WorkloadIdentity } from '../../src/registry/types.js';
import { formatErrors, validateTables } from '../../src/tables/index.js';

const objects = [
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: { selector: { app: 'reviews' }, clusterIP: '10.0.0.9', ports: [{ name: 'http', port: 9080 }] },
  },
];
const W: WorkloadIdentity = {
  name: 'productpage',
  namespace: 'shop',
  labels: { app: 'productpage' },
  serviceAccount: 'default',
};

const compile = (mesh: Partial<MeshSettings>) => compileForWorkload(buildSnapshot(objects, mesh), W).tables;

describe('compiler: mesh access log -> tables telemetry', () => {
  it('copies accessLog from the mesh settings into telemetry.accessLog, valid for the proxy', () => {
    const t = compile({
      accessLog: { file: '/dev/stdout', encoding: 'JSON', format: '{"c":"%RESPONSE_CODE%"}' },
    });
    expect(t.telemetry).to.deep.equal({
      accessLog: { file: '/dev/stdout', encoding: 'JSON', format: '{"c":"%RESPONSE_CODE%"}' },
    });
    const v = validateTables(t);
    expect(v.ok, v.ok ? '' : formatErrors(v.errors)).to.equal(true);
  });

  it('leaves telemetry out (and the version unchanged) when the mesh has no access log', () => {
    const off = compile({});
    expect(off).to.not.have.property('telemetry');
    const on = compile({ accessLog: { file: '/dev/stdout', encoding: 'TEXT' } });
    expect(on.version).to.not.equal(off.version);
    expect(compile({ outboundTrafficPolicy: 'ALLOW_ANY' }).version).to.equal(off.version);
  });

  it('is deterministic: equal settings give byte-identical tables, another file another version', () => {
    const a = compile({ accessLog: { file: '/tmp/a.log', encoding: 'TEXT' } });
    const b = compile({ accessLog: { encoding: 'TEXT', file: '/tmp/a.log' } });
    expect(JSON.stringify(a)).to.equal(JSON.stringify(b));
    expect(compile({ accessLog: { file: '/tmp/b.log', encoding: 'TEXT' } }).version).to.not.equal(a.version);
  });

  it('rejects a telemetry section with an unknown encoding in the proxy validator, naming the path', () => {
    const t = { ...compile({}), telemetry: { accessLog: { file: '/dev/stdout', encoding: 'XML' } } };
    const v = validateTables(t);
    expect(v.ok).to.equal(false);
    expect(!v.ok && v.errors.map((e) => e.path)).to.include('telemetry.accessLog.encoding');
  });
});
