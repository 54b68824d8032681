/**
 * The mesh-wide access log (mesh config accessLogFile/Encoding/Format, carried by the tables
 * as `telemetry.accessLog`) applied live by a real SidecarProxy on loopback: a table with it
 * starts JSON lines in a real file, a table without it stops them (and takes telemetry off the
 * request path again), a new file moves the log, TCP connections are logged too, and a per-pod
 * access log (options: env/flags) wins over the mesh one.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import type { TelemetryOptions } from '../../src/proxy/telemetry/request-telemetry.js';
import type { ProxyTables, Telemetry } from '../../src/tables/index.js';
import { C1, ep, send, startUpstream, tables, type Upstream } from './helpers.js';
import { startEcho } from './tcp-helpers.js';

function readLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** Lines of `file` once it has `n` (the writer flushes on the next tick; a replaced one on close). */
async function lines(p: SidecarProxy, file: string, n: number): Promise<string[]> {
  p.telemetry?.accessLog?.flush();
  for (let i = 0; i < 200; i++) {
    const out = readLines(file);
    if (out.length >= n) return out;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`access log ${file} did not reach ${n} lines`);
}

describe('proxy: mesh access log applied on table swap', () => {
  let app: Upstream;
  let dir: string;
  let proxy: SidecarProxy | undefined;

  const start = async (telemetry?: TelemetryOptions) => {
    proxy = new SidecarProxy({
      adminPort: null,
      statsPort: null,
      healthPort: null,
      listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, db: 0 } },
      logger: createLogger('error'),
      ...(telemetry ? { telemetry } : {}),
    });
    await proxy.start();
    return proxy;
  };
  const apply = async (p: SidecarProxy, version: string, telemetry?: Telemetry) => {
    const t: ProxyTables = tables(
      [{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }],
      { [C1]: [ep(app)] },
      {
        version,
        ...(telemetry ? { telemetry } : {}),
      },
    );
    const r = await p.applyTables(t);
    expect(r.ok, JSON.stringify(r)).to.equal(true);
  };
  const get = async (p: SidecarProxy, path: string) =>
    expect((await send(p.listenerPort('virtualOutbound')!, { path })).status).to.equal(200);

  before(async () => {
    app = await startUpstream('reviews');
    dir = mkdtempSync(join(tmpdir(), 'isthmus-mesh-accesslog-'));
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await proxy?.stop(50);
    proxy = undefined;
  });

  it('a table with telemetry.accessLog starts JSON lines; a table without it stops them', async () => {
    const file = join(dir, 'on-off.log');
    const p = await start();
    await apply(p, 'v1');
    expect(p.telemetry, 'off before the mesh sets it').to.equal(null);
    await get(p, '/before');

    await apply(p, 'v2', { accessLog: { file, encoding: 'JSON' } });
    expect(p.telemetry?.accessLog).to.not.equal(null);
    await get(p, '/on-1');
    await get(p, '/on-2');
    const on = (await lines(p, file, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(on.map((l) => [l.path, l.response_code, l.upstream_cluster])).to.deep.equal([
      ['/on-1', 200, C1],
      ['/on-2', 200, C1],
    ]);

    await apply(p, 'v3');
    expect(p.telemetry, 'off again: requests pay nothing').to.equal(null);
    await get(p, '/after-1');
    await get(p, '/after-2');
    expect(readLines(file).map((l) => (JSON.parse(l) as { path: string }).path)).to.deep.equal([
      '/on-1',
      '/on-2',
    ]);
  });

  it('a new file, encoding or format moves the log to it; an unchanged setting keeps the writer', async () => {
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    const p = await start();
    await apply(p, 'v1', { accessLog: { file: a, encoding: 'JSON' } });
    const writer = p.telemetry!.accessLog;
    await apply(p, 'v1b', { accessLog: { file: a, encoding: 'JSON' } });
    expect(p.telemetry!.accessLog, 'same setting, same writer').to.equal(writer);
    await get(p, '/to-a');
    await lines(p, a, 1);

    await apply(p, 'v2', {
      accessLog: { file: b, encoding: 'TEXT', format: '%REQ(:PATH)% %RESPONSE_CODE%\n' },
    });
    await get(p, '/to-b');
    expect(await lines(p, b, 1)).to.deep.equal(['/to-b 200']);
    expect(readLines(a).map((l) => (JSON.parse(l) as { path: string }).path)).to.deep.equal(['/to-a']);
  });

  it('logs TCP connections opened after the mesh turned the log on', async () => {
    const echo = await startEcho();
    const file = join(dir, 'tcp.log');
    const DB = 'outbound|5432||db.shop.svc.cluster.local';
    const tcpTables = (version: string, telemetry?: Telemetry): ProxyTables => ({
      apiVersion: 'isthmus.io/tables/v1',
      version,
      node: { name: 'api', namespace: 'shop', app: 'api' },
      listeners: [{ name: 'db', direction: 'outbound', port: 5432, protocol: 'tcp', cluster: DB }],
      routeConfigs: [],
      clusters: [{ name: DB, service: { host: 'db.shop.svc.cluster.local', name: 'db', namespace: 'shop' } }],
      endpoints: { [DB]: [ep(echo)] },
      ...(telemetry ? { telemetry } : {}),
    });
    const roundTrip = async (p: SidecarProxy) => {
      const s = net.connect(p.tcp.port('db')!, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      s.write('hello');
      await new Promise((r) => s.once('data', r));
      s.end();
      await new Promise((r) => s.once('close', r));
    };
    try {
      const p = await start();
      expect((await p.applyTables(tcpTables('t1'))).ok).to.equal(true);
      await roundTrip(p);
      expect((await p.applyTables(tcpTables('t2', { accessLog: { file, encoding: 'JSON' } }))).ok).to.equal(
        true,
      );
      await roundTrip(p);
      const got = (await lines(p, file, 1)).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(got).to.have.length(1);
      expect(got[0]).to.deep.include({
        upstream_cluster: DB,
        upstream_host: `127.0.0.1:${echo.port}`,
        bytes_received: 5,
      });
    } finally {
      await echo.close();
    }
  });

  it('a per-pod access log (env/flags) wins: the mesh setting is ignored', async () => {
    const pod = join(dir, 'pod.log');
    const mesh = join(dir, 'mesh.log');
    const p = await start({ accessLog: { file: pod, encoding: 'JSON' } });
    await apply(p, 'v1', { accessLog: { file: mesh, encoding: 'TEXT' } });
    await get(p, '/pinned');
    const [line] = await lines(p, pod, 1);
    expect((JSON.parse(line!) as { path: string }).path).to.equal('/pinned');
    await apply(p, 'v2');
    expect(p.telemetry?.accessLog, 'a table without the mesh log does not turn the pod log off').to.not.equal(
      null,
    );
    expect(existsSync(mesh)).to.equal(false);
  });

  it('a format the proxy cannot compile keeps the current log', async () => {
    const file = join(dir, 'keep.log');
    const p = await start();
    await apply(p, 'v1', { accessLog: { file, encoding: 'JSON' } });
    const writer = p.telemetry!.accessLog;
    await apply(p, 'v2', { accessLog: { file: join(dir, 'bad.log'), encoding: 'TEXT', format: '%NOPE%' } });
    expect(p.telemetry!.accessLog).to.equal(writer);
    await get(p, '/kept');
    expect((await lines(p, file, 1)).map((l) => (JSON.parse(l) as { path: string }).path)).to.deep.equal([
      '/kept',
    ]);
    expect(existsSync(join(dir, 'bad.log'))).to.equal(false);
  });
});
