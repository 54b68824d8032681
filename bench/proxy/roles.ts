/**
 * Processes the proxy benchmark starts, one role each:
 *   upstream <port>                     1 KB responses, keep-alive
 *   node-proxy <port> <upstreamPort>    plain node:http server + http.request with a keep-alive Agent
 *   undici-proxy <port> <upstreamPort>  node:http server + undici Pool.request (peer baseline)
 *   isthmus <port> <upstreamPort>       the Isthmus sidecar proxy on a one-route config
 * Each prints "ready <port>" on stdout once listening.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';

const [role, portArg, upstreamArg] = process.argv.slice(2);
const port = Number(portArg ?? 0);
const upstreamPort = Number(upstreamArg ?? 0);
const BODY = Buffer.alloc(1024, 'x');

function announce(server: http.Server): void {
  process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
}

async function main(): Promise<void> {
  if (role === 'upstream') {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.end(BODY);
    });
    server.keepAliveTimeout = 60_000;
    server.listen(port, '127.0.0.1', () => announce(server));
  } else if (role === 'node-proxy') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const server = http.createServer((req, res) => {
      const up = http.request(
        {
          host: '127.0.0.1',
          port: upstreamPort,
          path: req.url,
          method: req.method,
          headers: req.headers,
          agent,
        },
        (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    });
    server.keepAliveTimeout = 60_000;
    server.listen(port, '127.0.0.1', () => announce(server));
  } else if (role === 'undici-proxy') {
    const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64 });
    const server = http.createServer(async (req, res) => {
      try {
        const r = await pool.request({
          path: req.url ?? '/',
          method: 'GET',
          headers: { host: req.headers.host ?? '' },
        });
        res.writeHead(r.statusCode, r.headers as http.OutgoingHttpHeaders);
        res.end(Buffer.from(await r.body.arrayBuffer()));
      } catch {
        res.writeHead(502);
        res.end();
      }
    });
    server.keepAliveTimeout = 60_000;
    server.listen(port, '127.0.0.1', () => announce(server));
  } else if (role === 'isthmus') {
    const cluster = 'outbound|9080||upstream.bench.svc.cluster.local';
    const proxy = new SidecarProxy({
      adminPort: null,
      statsPort: null,
      healthPort: null,
      logger: createLogger('error'),
      listeners: { address: '127.0.0.1', ports: { bench: port } },
    });
    await proxy.start();
    const r = await proxy.applyTables({
      apiVersion: 'isthmus.io/tables/v1',
      version: 'bench',
      node: { name: 'bench-client', namespace: 'bench', app: 'bench', version: 'v1' },
      listeners: [
        { name: 'bench', direction: 'outbound', port: 9080, protocol: 'http', routeConfig: '9080' },
      ],
      routeConfigs: [
        {
          name: '9080',
          virtualHosts: [
            {
              name: 'upstream',
              domains: ['*'],
              routes: [{ forward: { clusters: [{ cluster, weight: 1 }] } }],
            },
          ],
        },
      ],
      clusters: [
        {
          name: cluster,
          service: { host: 'upstream.bench.svc.cluster.local', name: 'upstream', namespace: 'bench' },
        },
      ],
      endpoints: { [cluster]: [{ address: '127.0.0.1', port: upstreamPort }] },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    process.stdout.write(`ready ${proxy.listenerPort('bench')}\n`);
  } else {
    throw new Error(`unknown role ${role}`);
  }
}

process.on('SIGTERM', () => process.exit(0));
await main();
