/**
 * The agent status server (15020): app probes run against real HTTP, TCP and gRPC servers on
 * loopback, readiness mirror, /quitquitquit, merged Prometheus metrics.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { appMetricsFromEnv, parseAppProbers, StatusServer } from '../../src/agent/status/index.js';
import { createLogger } from '../../src/proxy/log.js';

async function listen(server: net.Server | http.Server | http2.Http2Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A gRPC health server answering SERVING (1) or NOT_SERVING (2) per service name. */
function grpcHealth(statuses: Record<string, number>): http2.Http2Server {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const msg = body.subarray(5);
      const service = msg.length > 2 ? msg.subarray(2, 2 + msg[1]!).toString() : '';
      const status = statuses[service];
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () =>
        stream.sendTrailers({ 'grpc-status': status === undefined ? '5' : '0' }),
      );
      if (status === undefined) {
        stream.end();
        return;
      }
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]));
    });
  });
  return server;
}

describe('agent status server (15020)', () => {
  const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = [];
  let app: http.Server;
  let appPort: number;
  let tcpApp: net.Server;
  let tcpPort: number;
  let grpc: http2.Http2Server;
  let grpcPort: number;
  let dead: number;
  let status: StatusServer;
  let port: number;
  let ready = true;
  let quits = 0;

  before(async () => {
    app = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      if (req.url === '/metrics') {
        res.end('# TYPE app_hits counter\napp_hits 42\n');
        return;
      }
      res.statusCode = req.url === '/ready' ? 200 : req.url === '/moved' ? 302 : 503;
      if (res.statusCode === 302) res.setHeader('location', '/elsewhere');
      res.end();
    });
    appPort = await listen(app);
    tcpApp = net.createServer((s) => s.destroy());
    tcpPort = await listen(tcpApp);
    grpc = grpcHealth({ '': 1, sick: 2 });
    grpcPort = await listen(grpc);
    dead = await deadPort();
    const probers = JSON.stringify({
      '/app-health/web/readyz': {
        httpGet: {
          path: '/ready',
          port: appPort,
          scheme: 'HTTP',
          httpHeaders: [{ name: 'X-Probe', value: 'yes' }],
        },
        timeoutSeconds: 2,
      },
      '/app-health/web/livez': { httpGet: { path: '/broken', port: appPort } },
      '/app-health/web/startupz': { httpGet: { path: '/moved', port: String(appPort) } },
      '/app-health/db/livez': { tcpSocket: { port: tcpPort } },
      '/app-health/db/readyz': { tcpSocket: { port: dead } },
      '/app-health/api/livez': { grpc: { port: grpcPort } },
      '/app-health/api/readyz': { grpc: { port: grpcPort, service: 'sick' } },
      '/app-health/bad/livez': { httpGet: { port: 'http' } },
    });
    const parsed = parseAppProbers(probers);
    expect(parsed.errors).to.have.length(1);
    expect(parsed.errors[0]).to.contain('/app-health/bad/livez');
    status = new StatusServer({
      target: {
        isReady: () => ready,
        prometheus: () => '# TYPE istio_requests_total counter\nistio_requests_total{reporter="source"} 1\n',
        quit: () => {
          quits++;
        },
      },
      probers: parsed.probers,
      log: createLogger('error'),
      appMetrics: appMetricsFromEnv(
        JSON.stringify({ scrape: 'true', port: String(appPort), path: '/metrics' }),
      ),
    });
    port = await status.listen(0, '127.0.0.1');
  });
  after(() => {
    status.close();
    app.close();
    tcpApp.close();
    grpc.close();
  });

  it('runs the original HTTP probe with its path and headers; the app status decides', async () => {
    const ok = await get(port, '/app-health/web/readyz');
    expect(ok.status).to.equal(200);
    const hit = seen.find((s) => s.url === '/ready')!;
    expect(hit.headers['x-probe']).to.equal('yes');
    expect((await get(port, '/app-health/web/livez')).status).to.equal(503);
    // 3xx counts as success for kubelet; the agent reports 200 and does not follow.
    expect((await get(port, '/app-health/web/startupz')).status).to.equal(200);
  });

  it('runs TCP probes (connect = success, refused = 500)', async () => {
    expect((await get(port, '/app-health/db/livez')).status).to.equal(200);
    const fail = await get(port, '/app-health/db/readyz');
    expect(fail.status).to.equal(500);
    expect(fail.body).to.contain('ECONNREFUSED');
  });

  it('runs gRPC health probes (SERVING = success)', async () => {
    expect((await get(port, '/app-health/api/livez')).status).to.equal(200);
    const sick = await get(port, '/app-health/api/readyz');
    expect(sick.status).to.equal(500);
    expect(sick.body).to.contain('health status 2');
  });

  it('answers 404 for unknown probe paths and for probes that could not be parsed', async () => {
    expect((await get(port, '/app-health/nope/livez')).status).to.equal(404);
    expect((await get(port, '/app-health/bad/livez')).status).to.equal(404);
  });

  it('mirrors readiness on /healthz/ready', async () => {
    expect((await get(port, '/healthz/ready')).status).to.equal(200);
    ready = false;
    expect((await get(port, '/healthz/ready')).status).to.equal(503);
    ready = true;
  });

  it('merges proxy and app metrics on /stats/prometheus', async () => {
    const r = await get(port, '/stats/prometheus');
    expect(r.status).to.equal(200);
    expect(r.body).to.contain('istio_requests_total{reporter="source"} 1');
    expect(r.body).to.contain('app_hits 42');
  });

  it('quits on POST /quitquitquit from inside the pod only once; GET is refused', async () => {
    expect((await get(port, '/quitquitquit')).status).to.equal(405);
    expect((await get(port, '/quitquitquit', 'POST')).status).to.equal(200);
    expect((await get(port, '/quitquitquit', 'POST')).status).to.equal(200);
    await new Promise((r) => setImmediate(r));
    expect(quits).to.equal(1);
  });

  it('fails a probe that exceeds its timeout', async () => {
    const slow = net.createServer(() => {}); // accepts, never answers
    const slowPort = await listen(slow);
    const s = new StatusServer({
      target: { isReady: () => true, prometheus: () => '', quit: () => {} },
      probers: parseAppProbers(
        JSON.stringify({
          '/app-health/slow/livez': { httpGet: { path: '/', port: slowPort }, timeoutSeconds: 0.3 },
        }),
      ).probers,
      log: createLogger('error'),
    });
    const p = await s.listen(0, '127.0.0.1');
    const started = Date.now();
    const r = await get(p, '/app-health/slow/livez');
    expect(r.status).to.equal(500);
    expect(r.body).to.contain('timeout');
    expect(Date.now() - started).to.be.lessThan(2000);
    s.close();
    slow.close();
  });
});
