/**
 * Access logs through a real SidecarProxy on loopback, written to a real file: off by
 * default, Istio's JSON fields for a 200, a 404 NR, 503 UF / UH, Istio's TEXT format, a TCP
 * connection line, and the authorization outcome (AUDIT, dry-run) of inbound requests. Also the
 * configuration path: PROXY_CONFIG from the injector, bad PROXY_CONFIG / flags.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { telemetryFromCli } from '../../src/cli/commands/proxy.js';
import { kubeInject } from '../../src/inject/kube-inject.js';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import { compileFormat, LogEntry } from '../../src/proxy/telemetry/access-log.js';
import type { TelemetryOptions } from '../../src/proxy/telemetry/request-telemetry.js';
import type { AuthzPolicy, ProxyTables } from '../../src/tables/index.js';
import { testContext } from '../inject/helpers.js';
import { C1, C2, deadPort, ep, send, startUpstream, tables, type Upstream } from './helpers.js';
import { startEcho } from './tcp-helpers.js';

async function start(t: ProxyTables, telemetry?: TelemetryOptions): Promise<SidecarProxy> {
  const p = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0, db: 0 } },
    logger: createLogger('error'),
    ...(telemetry ? { telemetry } : {}),
  });
  await p.start();
  const r = await p.applyTables(t);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return p;
}

/** Lines of the log once `n` have been written (the writer flushes on the next tick). */
async function lines(p: SidecarProxy, file: string, n: number): Promise<string[]> {
  p.telemetry!.accessLog!.flush();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {}
    const out = text.split('\n').filter((l) => l !== '');
    if (out.length >= n) return out;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`access log ${file} did not reach ${n} lines`);
}

describe('proxy access log', () => {
  let app: Upstream;
  let dir: string;
  let proxy: SidecarProxy | undefined;

  before(async () => {
    app = await startUpstream('reviews');
    dir = mkdtempSync(join(tmpdir(), 'isthmus-accesslog-'));
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await proxy?.stop(50);
    proxy = undefined;
  });

  it('is off by default: no telemetry object, no file, nothing from empty env/flags', async () => {
    expect(telemetryFromCli({}, {}).accessLog).to.equal(undefined);
    expect(telemetryFromCli({}, {}).tracing).to.equal(undefined);
    proxy = await start(
      tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(app)] }),
    );
    expect(proxy.telemetry).to.equal(null);
    expect((await send(proxy.listenerPort('virtualOutbound')!)).status).to.equal(200);
  });

  it('JSON: Istio fields for a 200, a 404 NR, a 503 UF and a 503 UH', async () => {
    const file = join(dir, 'json.log');
    const dead = await deadPort();
    proxy = await start(
      tables(
        [
          {
            name: 'dead',
            match: { path: { prefix: '/dead' } },
            forward: { clusters: [{ cluster: C2, weight: 1 }] },
          },
          {
            name: 'empty',
            match: { path: { prefix: '/empty' } },
            forward: {
              clusters: [{ cluster: 'outbound|9080|v3|reviews.shop.svc.cluster.local', weight: 1 }],
            },
          },
          { name: 'ok', forward: { clusters: [{ cluster: C1, weight: 1 }] } },
        ],
        {
          [C1]: [ep(app)],
          [C2]: [ep({ port: dead })],
          'outbound|9080|v3|reviews.shop.svc.cluster.local': [],
        },
      ),
      { accessLog: { file, encoding: 'JSON' } },
    );
    const port = proxy.listenerPort('virtualOutbound')!;
    const ok = await send(port, {
      path: '/reviews/1?x=1',
      headers: { 'user-agent': 'curl/8', 'x-forwarded-for': '10.1.2.3', 'x-request-id': 'rid-1' },
    });
    expect(ok.status).to.equal(200);
    expect((await send(port, { host: 'nobody:9080', path: '/nr' })).status).to.equal(404);
    expect((await send(port, { path: '/dead' })).status).to.equal(503);
    expect((await send(port, { path: '/empty' })).status).to.equal(503);
    const [l200, l404, lUF, lUH] = (await lines(proxy, file, 4)).map(
      (l) => JSON.parse(l) as Record<string, unknown>,
    );

    expect(Object.keys(l200!)).to.deep.equal([
      'start_time',
      'route_name',
      'method',
      'path',
      'protocol',
      'response_code',
      'response_flags',
      'response_code_details',
      'connection_termination_details',
      'bytes_received',
      'bytes_sent',
      'duration',
      'upstream_service_time',
      'x_forwarded_for',
      'user_agent',
      'request_id',
      'authority',
      'upstream_host',
      'upstream_cluster',
      'upstream_local_address',
      'downstream_local_address',
      'downstream_remote_address',
      'requested_server_name',
      'upstream_transport_failure_reason',
    ]);
    expect(l200).to.deep.include({
      route_name: 'ok',
      method: 'GET',
      path: '/reviews/1?x=1',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      response_code_details: 'via_upstream',
      connection_termination_details: null,
      bytes_received: 0,
      bytes_sent: 'reviews'.length,
      upstream_service_time: null,
      x_forwarded_for: '10.1.2.3',
      user_agent: 'curl/8',
      request_id: 'rid-1',
      authority: 'reviews:9080',
      upstream_host: `127.0.0.1:${app.port}`,
      upstream_cluster: C1,
      downstream_local_address: `127.0.0.1:${port}`,
      requested_server_name: null,
    });
    expect(Date.parse(l200!.start_time as string)).to.be.closeTo(Date.now(), 60_000);
    expect(l200!.duration).to.be.a('number');
    expect(l200!.downstream_remote_address).to.match(/^127\.0\.0\.1:\d+$/);

    expect(l404).to.deep.include({
      response_code: 404,
      response_flags: 'NR',
      response_code_details: 'route_not_found',
      upstream_cluster: null,
      upstream_host: null,
      authority: 'nobody:9080',
      path: '/nr',
    });
    expect(lUF).to.deep.include({
      response_code: 503,
      response_flags: 'UF',
      response_code_details: 'upstream_reset_before_response_started{connection_failure}',
      upstream_cluster: C2,
      upstream_host: `127.0.0.1:${dead}`,
      route_name: 'dead',
    });
    // The generated x-request-id is the one logged.
    expect(lUF!.request_id).to.match(/^[0-9a-f-]{36}$/);
    expect(lUH).to.deep.include({
      response_code: 503,
      response_flags: 'UH',
      response_code_details: 'no_healthy_upstream',
    });
  });

  it("TEXT: Istio's default format", async () => {
    const file = join(dir, 'text.log');
    proxy = await start(
      tables([{ name: 'ok', forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(app)] }),
      {
        accessLog: { file, encoding: 'TEXT' },
      },
    );
    const port = proxy.listenerPort('virtualOutbound')!;
    await send(port, { path: '/p', headers: { 'user-agent': 'ua', 'x-request-id': 'rid-t' } });
    const [line] = await lines(proxy, file, 1);
    const re = new RegExp(
      String.raw`^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] "GET /p HTTP/1\.1" 200 - via_upstream - "-" 0 7 \d+ - "-" "ua" "rid-t" ` +
        String.raw`"reviews:9080" "127\.0\.0\.1:${app.port}" ${C1.replace(/\|/g, '\\|')} - 127\.0\.0\.1:${port} 127\.0\.0\.1:\d+ - ok$`,
    );
    expect(line).to.match(re);
  });

  it('TCP: one line per closed connection with bytes, cluster and upstream host', async () => {
    const echo = await startEcho();
    const file = join(dir, 'tcp.log');
    const DB = 'outbound|5432||db.shop.svc.cluster.local';
    try {
      proxy = await start(
        {
          apiVersion: 'isthmus.io/tables/v1',
          version: 'tcp-1',
          node: { name: 'api', namespace: 'shop', app: 'api' },
          listeners: [{ name: 'db', direction: 'outbound', port: 5432, protocol: 'tcp', cluster: DB }],
          routeConfigs: [],
          clusters: [
            { name: DB, service: { host: 'db.shop.svc.cluster.local', name: 'db', namespace: 'shop' } },
          ],
          endpoints: { [DB]: [ep(echo)] },
        },
        { accessLog: { file, encoding: 'JSON' } },
      );
      const s = net.connect(proxy.tcp.port('db')!, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      s.write('hello');
      await new Promise((r) => s.once('data', r));
      s.end();
      await new Promise((r) => s.once('close', r));
      const [line] = await lines(proxy, file, 1);
      const l = JSON.parse(line!) as Record<string, unknown>;
      expect(l).to.deep.include({
        upstream_cluster: DB,
        upstream_host: `127.0.0.1:${echo.port}`,
        response_flags: '-',
        bytes_received: 5,
        method: null,
        response_code: 0,
      });
      expect(l.bytes_sent).to.be.at.least(5);
      expect(l.upstream_local_address).to.match(/^127\.0\.0\.1:\d+$/);
    } finally {
      await echo.close();
    }
  });

  it('WebSocket: one line when the upgraded connection ends, with the 101', async () => {
    const file = join(dir, 'ws.log');
    const ws = http.createServer();
    ws.on('upgrade', (_req, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(d));
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r));
    try {
      const wsPort = (ws.address() as AddressInfo).port;
      proxy = await start(
        tables([{ name: 'ws', forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
          [C1]: [ep({ port: wsPort })],
        }),
        {
          accessLog: { file, encoding: 'JSON' },
        },
      );
      const req = http.request({
        host: '127.0.0.1',
        port: proxy.listenerPort('virtualOutbound')!,
        path: '/chat',
        headers: {
          host: 'reviews:9080',
          connection: 'Upgrade',
          upgrade: 'websocket',
          'x-request-id': 'ws-1',
        },
      });
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        req.on('upgrade', (_r, s: net.Socket) => resolve(s));
        req.on('error', reject);
        req.end();
      });
      socket.write('ping');
      await new Promise((r) => socket.once('data', r));
      socket.end();
      const [line] = await lines(proxy, file, 1);
      expect(JSON.parse(line!)).to.deep.include({
        response_code: 101,
        path: '/chat',
        request_id: 'ws-1',
        route_name: 'ws',
        upstream_cluster: C1,
        upstream_host: `127.0.0.1:${wsPort}`,
      });
    } finally {
      ws.closeAllConnections();
      ws.close();
    }
  });

  function authzTables(): ProxyTables {
    const CLUSTER = 'inbound|9080||';
    const policies: AuthzPolicy[] = [
      {
        name: 'deny-headers',
        namespace: 'shop',
        action: 'DENY',
        dryRun: true,
        rules: [{ to: [{ operation: { paths: ['/headers'] } }] }],
      },
      {
        name: 'allow-get',
        namespace: 'shop',
        action: 'ALLOW',
        dryRun: true,
        rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
      },
      { name: 'audit-all', namespace: 'shop', action: 'AUDIT', rules: [{}] },
    ];
    return {
      apiVersion: 'isthmus.io/tables/v1',
      version: 'authz',
      node: { name: 'reviews-v1', namespace: 'shop', app: 'reviews' },
      listeners: [
        { name: 'virtualInbound', direction: 'inbound', port: 15006, protocol: 'http', routeConfig: 'in' },
      ],
      routeConfigs: [
        {
          name: 'in',
          virtualHosts: [
            {
              name: 'in',
              domains: ['*'],
              routes: [{ name: 'default', forward: { clusters: [{ cluster: CLUSTER, weight: 1 }] } }],
            },
          ],
        },
      ],
      clusters: [{ name: CLUSTER }],
      endpoints: { [CLUSTER]: [ep(app)] },
      security: { policies },
    };
  }

  it('inbound: AUDIT and dry-run outcomes appear in the line; a dry-run DENY does not deny', async () => {
    const file = join(dir, 'authz.log');
    proxy = await start(authzTables(), { accessLog: { file, encoding: 'JSON' } });
    const port = proxy.listenerPort('virtualInbound')!;
    expect((await send(port, { path: '/headers' })).status).to.equal(200);
    expect((await send(port, { path: '/ok', method: 'POST' })).status).to.equal(200);
    const [denied, post] = (await lines(proxy, file, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(denied).to.deep.include({
      response_code: 200,
      istio_dry_run_deny_shadow_engine_result: 'denied',
      istio_dry_run_deny_shadow_effective_policy_id: 'ns[shop]-policy[deny-headers]-rule[0]',
      istio_dry_run_allow_shadow_engine_result: 'allowed',
      istio_dry_run_allow_shadow_effective_policy_id: 'ns[shop]-policy[allow-get]-rule[0]',
      access_log_hint: true,
      audit_policy_id: 'shop/audit-all',
    });
    expect(post).to.deep.include({
      istio_dry_run_deny_shadow_engine_result: 'allowed',
      istio_dry_run_deny_shadow_effective_policy_id: null,
      istio_dry_run_allow_shadow_engine_result: 'denied',
    });
    const prom = proxy.prometheus();
    expect(prom).to.include(
      'envoy_http_inbound_0_0_0_0_15006_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"} 1',
    );
    expect(prom).to.include(
      'envoy_http_inbound_0_0_0_0_15006_rbac{authz_dry_run_action="allow",authz_dry_run_result="denied"} 1',
    );
  });

  it('an enforced DENY is logged with the matched policy in response_code_details', async () => {
    const file = join(dir, 'deny.log');
    const t = authzTables();
    t.security = {
      policies: [
        {
          name: 'no-admin',
          namespace: 'shop',
          action: 'DENY',
          rules: [{ to: [{ operation: { paths: ['/admin'] } }] }],
        },
      ],
    };
    proxy = await start(t, { accessLog: { file, encoding: 'JSON' } });
    expect((await send(proxy.listenerPort('virtualInbound')!, { path: '/admin' })).status).to.equal(403);
    const [line] = await lines(proxy, file, 1);
    expect(JSON.parse(line!)).to.deep.include({
      response_code: 403,
      response_code_details: 'rbac_access_denied_matched_policy[ns[shop]-policy[no-admin]-rule[0]]',
      upstream_cluster: null,
    });
  });

  it('dry-run verdicts are counted in Prometheus without any access log or tracing', async () => {
    proxy = await start(authzTables());
    expect(proxy.telemetry).to.equal(null);
    const port = proxy.listenerPort('virtualInbound')!;
    expect((await send(port, { path: '/headers' })).status).to.equal(200);
    expect(proxy.prometheus()).to.include(
      'envoy_http_inbound_0_0_0_0_15006_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"} 1',
    );
  });

  it('custom formats: TEXT commands and a JSON object; unknown commands are refused by name', () => {
    const e = new LogEntry().reset();
    e.method = 'GET';
    e.status = 201;
    e.requestHeaders = ['X-Tenant', 'acme'];
    e.dryRunDenyResult = 'denied';
    expect(
      compileFormat('TEXT', '%REQ(:METHOD)% %RESPONSE_CODE% %REQ(X-TENANT)% %UPSTREAM_HOST%')(e),
    ).to.equal('GET 201 acme -\n');
    const json = compileFormat(
      'JSON',
      '{"code":"%RESPONSE_CODE%","t":"%REQ(x-tenant)%/%ROUTE_NAME%","dry":"%DYNAMIC_METADATA(envoy.filters.http.rbac:istio_dry_run_deny_shadow_engine_result)%"}',
    )(e);
    expect(JSON.parse(json)).to.deep.equal({ code: 201, t: 'acme/-', dry: 'denied' });
    expect(() => compileFormat('TEXT', '%NOPE%')).to.throw(/unsupported command %NOPE%/);
  });
});

describe('tracing and access log configuration (PROXY_CONFIG, flags, injection)', () => {
  it("the injector's PROXY_CONFIG carries the pod's tracing; the proxy reads it", () => {
    const pod = `
apiVersion: v1
kind: Pod
metadata:
  name: traced
  annotations:
    proxy.istio.io/config: |
      tracing:
        zipkin:
          address: zipkin.istio-system:9411
        sampling: 25
spec:
  containers:
    - name: app
      image: example.com/app:1
`;
    const { output } = kubeInject(pod, testContext(), 'pod.yaml');
    const injected = parseAllDocuments(output)[0]!.toJS() as {
      spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> };
    };
    const proxyContainer = injected.spec.containers.find((c) => c.name === 'istio-proxy')!;
    const env = Object.fromEntries((proxyContainer.env ?? []).map((e) => [e.name, e.value]));
    const t = telemetryFromCli({}, env);
    expect(t.tracing).to.deep.equal({ sampling: 25, zipkin: { address: 'zipkin.istio-system:9411' } });
    // Flags win over PROXY_CONFIG.
    expect(telemetryFromCli({ traceSampling: '100' }, env).tracing?.sampling).to.equal(100);
  });

  it('a bad tracing annotation is refused at injection, naming the field', () => {
    const pod = `
apiVersion: v1
kind: Pod
metadata:
  name: bad
  annotations:
    proxy.istio.io/config: '{"tracing": {"sampling": 250}}'
spec:
  containers:
    - name: app
      image: example.com/app:1
`;
    expect(() => kubeInject(pod, testContext(), 'pod.yaml')).to.throw(
      /tracing\.sampling: expected a number from 0 to 100/,
    );
  });

  it('`isthmus proxy sidecar` with a bad PROXY_CONFIG exits non-zero naming the field', async function () {
    this.timeout(30_000);
    const child = spawn(process.execPath, ['bin/isthmus.js', 'proxy', 'sidecar', '--status-port', 'off'], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PROXY_CONFIG: '{"tracing":{"sampling":101}}' },
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.resume();
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).to.not.equal(0);
    expect(err).to.include('PROXY_CONFIG: tracing.sampling: expected a number from 0 to 100, got 101');
  });

  it('a bad PROXY_CONFIG or flag is a startup error naming it', () => {
    expect(() => telemetryFromCli({}, { PROXY_CONFIG: '{"tracing": {"sampling": "lots"}}' })).to.throw(
      'PROXY_CONFIG: tracing.sampling: expected a number from 0 to 100, got "lots"',
    );
    expect(() =>
      telemetryFromCli({}, { PROXY_CONFIG: '{"tracing": {"zipkin": {"address": "zipkin"}}}' }),
    ).to.throw(/PROXY_CONFIG: tracing\.zipkin\.address: .*no port/);
    expect(() => telemetryFromCli({}, { PROXY_CONFIG: '{"tracing": {"datadog": {}}}' })).to.throw(
      /PROXY_CONFIG: tracing\.datadog: not supported/,
    );
    expect(() => telemetryFromCli({}, { PROXY_CONFIG: '{not json' })).to.throw(
      /PROXY_CONFIG: not JSON or YAML/,
    );
    expect(() => telemetryFromCli({ traceSampling: '-1' }, {})).to.throw(/--trace-sampling/);
    expect(() => telemetryFromCli({ accessLogFile: '/dev/stdout', accessLogEncoding: 'XML' }, {})).to.throw(
      /--access-log-encoding: expected TEXT or JSON/,
    );
    expect(() =>
      telemetryFromCli({}, { ISTHMUS_ACCESS_LOG_FILE: '/dev/stdout', ISTHMUS_ACCESS_LOG_FORMAT: '%BAD%' }),
    ).to.throw(/ISTHMUS_ACCESS_LOG_FORMAT: access log format: unsupported command %BAD%/);
    expect(
      telemetryFromCli({}, { ISTHMUS_ACCESS_LOG_FILE: '/dev/stdout', ISTHMUS_ACCESS_LOG_ENCODING: 'json' })
        .accessLog,
    ).to.deep.equal({
      file: '/dev/stdout',
      encoding: 'JSON',
    });
  });
});
