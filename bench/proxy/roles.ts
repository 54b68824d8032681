/**
 * Processes the proxy benchmark starts, one role each:
 *   upstream <port>                     1 KB responses, keep-alive
 *   echo <port>                         TCP echo (for the TCP proxy path)
 *   node-proxy <port> <upstreamPort>    plain node:http server + http.request with a keep-alive Agent
 *   undici-proxy <port> <upstreamPort>  node:http server + undici Pool.request (peer baseline)
 * Each prints "ready <port>" on stdout once listening. The sidecars themselves run as the
 * compiled `isthmus proxy` CLI (run.ts).
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Pool } from 'undici';

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
  } else if (role === 'echo') {
    const server = net.createServer((s) => {
      s.setNoDelay(true);
      s.on('data', (d) => s.write(d));
      s.on('error', () => {});
    });
    server.listen(port, '127.0.0.1', () =>
      process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`),
    );
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
  } else {
    throw new Error(`unknown role ${role}`);
  }
}

process.on('SIGTERM', () => process.exit(0));
await main();
