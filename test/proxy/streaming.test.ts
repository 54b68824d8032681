import http from 'node:http';
import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import { C1, ep, outboundPort, send, startProxy, startUpstream, tables, type Upstream } from './helpers.js';

describe('proxy body handling and connection behaviour', () => {
  let up: Upstream;
  let proxy: SidecarProxy;
  let port: number;
  let upstreamAborts = 0;
  const big = Buffer.alloc(3 * 1024 * 1024, 'z');

  before(async () => {
    up = await startUpstream('up', (req, res) => {
      const url = req.url ?? '/';
      if (url === '/big') {
        res.writeHead(200, { 'content-length': big.length });
        res.end(big);
      } else if (url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part1-');
        setTimeout(() => res.end('part2'), 20);
      } else if (url === '/empty') {
        res.writeHead(204);
        res.end();
      } else if (url === '/close') {
        res.writeHead(200, { connection: 'close', 'content-length': 5 });
        res.end('close');
      } else if (url === '/endless') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('tick\n'), 10);
        res.on('close', () => {
          clearInterval(timer);
          upstreamAborts++;
        });
      } else {
        res.writeHead(200, { 'content-length': 2, 'x-len': String(req.headers['content-length'] ?? '') });
        res.end('ok');
      }
    });
    proxy = await startProxy(
      tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(up)] }),
    );
    port = outboundPort(proxy);
  });
  after(async () => {
    await proxy.stop(100);
    await up.close();
  });

  it('streams a large response intact (backpressure path)', async () => {
    const r = await send(port, { path: '/big' });
    expect(r.status).to.equal(200);
    expect(r.body.length).to.equal(big.length);
    expect(r.headers['content-length']).to.equal(String(big.length));
  });

  it('relays chunked responses, 204 and HEAD without a body', async () => {
    expect((await send(port, { path: '/chunked' })).body).to.equal('part1-part2');
    const empty = await send(port, { path: '/empty' });
    expect(empty.status).to.equal(204);
    expect(empty.body).to.equal('');
    const head = await send(port, { path: '/', method: 'HEAD' });
    expect(head.status).to.equal(200);
    expect(head.body).to.equal('');
  });

  it('does not forward hop-by-hop headers and survives upstream connection: close', async () => {
    const r = await send(port, { path: '/close' });
    expect(r.body).to.equal('close');
    expect(r.headers.connection).to.not.equal('close');
    await send(port, {
      headers: { connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5' },
    });
    const seen = up.seen.at(-1)!;
    expect(seen.headers['x-hop']).to.equal(undefined);
    expect(seen.headers['keep-alive']).to.equal(undefined);
    for (let i = 0; i < 5; i++) expect((await send(port, { path: '/close' })).status).to.equal(200);
  });

  it('aborts the upstream request when the client goes away mid-stream (DC)', async () => {
    const before = upstreamAborts;
    await new Promise<void>((resolve, reject) => {
      const req = http.get(
        { host: '127.0.0.1', port, path: '/endless', headers: { host: 'reviews:9080' } },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) =>
        err.message.includes('aborted') || err.message.includes('socket hang up') ? 0 : reject(err),
      );
    });
    for (let i = 0; i < 100 && upstreamAborts === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(upstreamAborts).to.equal(before + 1);
    expect(proxy.prometheus()).to.match(/response_code="200",response_flags="DC"\} 1/);
  });

  it('reuses upstream connections across requests (keep-alive pool)', async () => {
    const sockets = new Set<unknown>();
    const onConn = (s: unknown) => sockets.add(s);
    up.server.on('connection', onConn);
    for (let i = 0; i < 50; i++) await send(port);
    up.server.off('connection', onConn);
    expect(sockets.size).to.be.at.most(1);
  });
});
