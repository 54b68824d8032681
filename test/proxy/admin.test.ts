import { expect } from 'chai';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import {
  C1,
  ep,
  getText,
  outboundPort,
  send,
  startProxy,
  startUpstream,
  tables,
  type Upstream,
} from './helpers.js';

const reviewsV1 = { name: 'reviews-v1', namespace: 'shop', app: 'reviews', version: 'v1' };

describe('proxy admin, health and Prometheus endpoints', () => {
  let up: Upstream;
  let proxy: SidecarProxy;

  before(async () => {
    up = await startUpstream('v1');
  });
  after(async () => {
    await up.close();
  });
  afterEach(async () => {
    await proxy.stop(100);
  });

  function config() {
    const t = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], {
      [C1]: [ep(up, { workload: reviewsV1 })],
    });
    t.routeConfigs.push({
      name: 'inbound|9080||',
      virtualHosts: [
        {
          name: 'inbound',
          domains: ['*'],
          routes: [{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }],
        },
      ],
    });
    t.listeners.push({
      name: 'virtualInbound',
      direction: 'inbound',
      port: 15006,
      protocol: 'http',
      routeConfig: 'inbound|9080||',
    });
    return t;
  }

  it('is not ready before the first config and ready after it (/ready and :15021/healthz/ready)', async () => {
    proxy = new SidecarProxy({
      adminPort: 0,
      statsPort: 0,
      healthPort: 0,
      serviceAddress: '127.0.0.1',
      listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0 } },
      logger: createLogger('error'),
    });
    await proxy.start();
    expect((await getText(proxy.adminPort, '/ready')).status).to.equal(503);
    expect((await getText(proxy.healthPort, '/healthz/ready')).status).to.equal(503);
    expect((await proxy.applyTables(config())).ok).to.equal(true);
    const ready = await getText(proxy.adminPort, '/ready');
    expect(ready.status).to.equal(200);
    expect(ready.body).to.equal('LIVE\n');
    expect((await getText(proxy.healthPort, '/healthz/ready')).status).to.equal(200);
  });

  it('serves /config_dump, /clusters and /stats', async () => {
    proxy = await startProxy(config());
    await send(outboundPort(proxy));
    const dump = JSON.parse((await getText(proxy.adminPort, '/config_dump')).body);
    expect(dump.version).to.equal('v1');
    expect(dump.tables.clusters[0].name).to.equal(C1);
    const clusters = (await getText(proxy.adminPort, '/clusters')).body;
    expect(clusters).to.contain(`${C1}::127.0.0.1:${up.port}::rq_total::1`);
    expect(clusters).to.contain(`${C1}::127.0.0.1:${up.port}::health_flags::healthy`);
    const json = JSON.parse((await getText(proxy.adminPort, '/clusters?format=json')).body);
    expect(json.cluster_statuses[0].host_statuses[0].address.socket_address.port_value).to.equal(up.port);
    const stats = (await getText(proxy.adminPort, '/stats')).body;
    expect(stats).to.contain(`cluster.${C1}.upstream_rq_total: 1`);
    expect(stats).to.contain('http.virtualOutbound.downstream_rq_total: 1');
    // No certificate source: no workload certificate to show.
    expect(JSON.parse((await getText(proxy.adminPort, '/certs')).body)).to.deep.equal({ certificates: [] });
  });

  it('changes the log level with POST /logging and validates it', async () => {
    proxy = await startProxy(config());
    expect((await getText(proxy.adminPort, '/logging')).body).to.contain('proxy: error');
    expect((await getText(proxy.adminPort, '/logging?level=debug', 'POST')).status).to.equal(200);
    expect(proxy.log.level).to.equal('debug');
    expect((await getText(proxy.adminPort, '/logging?level=loud', 'POST')).status).to.equal(400);
    expect((await getText(proxy.adminPort, '/logging?level=info', 'GET')).status).to.equal(405);
  });

  it('exposes Istio standard metrics with Istio labels (source reporter, unknown for missing values)', async () => {
    proxy = await startProxy(config());
    const port = outboundPort(proxy);
    await send(port);
    await send(port);
    await send(port, { host: 'nowhere:9080' });
    const prom = (await getText(proxy.statsPort, '/stats/prometheus')).body;
    const labels =
      'reporter="source",source_workload="productpage-v1",source_workload_namespace="shop",' +
      'source_principal="unknown",source_app="productpage",source_version="v1",' +
      'destination_workload="reviews-v1",destination_workload_namespace="shop",destination_principal="unknown",' +
      'destination_app="reviews",destination_version="v1",destination_service="reviews.shop.svc.cluster.local",' +
      'destination_service_name="reviews",destination_service_namespace="shop",request_protocol="http",' +
      'grpc_response_status="",connection_security_policy="unknown",response_code="200",response_flags="-"';
    expect(prom).to.contain(`istio_requests_total{${labels}} 2`);
    expect(prom).to.contain(`istio_request_duration_milliseconds_count{${labels}} 2`);
    expect(prom).to.match(/istio_request_duration_milliseconds_bucket\{[^}]*le="\+Inf"\} 2/);
    expect(prom).to.contain(`istio_response_bytes_sum{${labels}} 4`);
    expect(prom).to.contain(`istio_request_bytes_count{${labels}} 2`);
    expect(prom).to.match(
      /istio_requests_total\{[^}]*destination_service="unknown"[^}]*response_code="404",response_flags="NR"\} 1/,
    );
    expect(prom).to.contain('# TYPE istio_request_duration_milliseconds histogram');
  });

  it('reports inbound requests with reporter="destination" and the proxy as destination', async () => {
    proxy = await startProxy(config());
    await send(proxy.listenerPort('virtualInbound')!, { host: 'reviews' });
    const prom = proxy.prometheus();
    expect(prom).to.match(
      /istio_requests_total\{reporter="destination",source_workload="unknown",[^}]*destination_workload="productpage-v1",[^}]*connection_security_policy="none",response_code="200"/,
    );
  });

  it('stops on POST /quitquitquit and calls onQuit', async () => {
    let quit = false;
    proxy = new SidecarProxy({
      adminPort: 0,
      statsPort: null,
      healthPort: null,
      listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0, virtualInbound: 0 } },
      logger: createLogger('error'),
      onQuit: () => {
        quit = true;
      },
    });
    await proxy.start();
    await proxy.applyTables(config());
    expect((await getText(proxy.adminPort, '/quitquitquit', 'POST')).body).to.equal('OK\n');
    for (let i = 0; i < 100 && !quit; i++) await new Promise((r) => setTimeout(r, 10));
    expect(quit).to.equal(true);
    expect(proxy.isReady()).to.equal(false);
  });
});
