/**
 * Side-by-side measurement of the two candidate upstream clients for the proxy hot path:
 * node:http with a keep-alive Agent vs undici Pool.dispatch with a raw handler. Loopback,
 * fixed concurrency, bounded by request count and wall time. Prints rps for each, twice,
 * interleaved, so a noisy neighbour affects both.
 *
 *   npx tsx bench/proxy/upstream-client.ts [concurrency=16] [seconds=3]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const CONCURRENCY = Number(process.argv[2] ?? 16);
const SECONDS = Number(process.argv[3] ?? 3);
const MAX_REQUESTS = 2_000_000;
const BODY = Buffer.alloc(1024, 'x');

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const port = (server.address() as AddressInfo).port;

type Issue = (done: () => void) => void;

async function run(name: string, issue: Issue): Promise<void> {
  let count = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let live = CONCURRENCY;
    const next = () => {
      if (performance.now() >= deadline || count >= MAX_REQUESTS) {
        if (--live === 0) resolve();
        return;
      }
      count++;
      issue(next);
    };
    for (let i = 0; i < CONCURRENCY; i++) next();
  });
  const secs = (performance.now() - start) / 1000;
  console.log(`${name.padEnd(22)} ${(count / secs).toFixed(0).padStart(8)} rps`);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const viaAgent: Issue = (done) => {
  const req = http.request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
    res.on('data', () => {});
    res.on('end', done);
  });
  req.on('error', done);
  req.end();
};

const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY, pipelining: 1 });
class RawHandler {
  constructor(private readonly done: () => void) {}
  onConnect(): void {}
  onHeaders(): boolean {
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {
    this.done();
  }
  onError(): void {
    this.done();
  }
}
const viaUndici: Issue = (done) => {
  pool.dispatch({ path: '/', method: 'GET', headers: ['host', `127.0.0.1:${port}`] }, new RawHandler(done));
};

for (let round = 0; round < 2; round++) {
  await run('node:http Agent', viaAgent);
  await run('undici Pool.dispatch', viaUndici);
}
agent.destroy();
await pool.close();
server.close();
