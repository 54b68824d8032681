/**
 * The proxy's own HTTP/1.1 server, driven with raw TCP so malformed and edge-case requests
 * can be sent exactly: framing attacks get 400/501, oversized heads 431, slow heads 408, and
 * none of them reach the upstream.
 */
import net from 'node:net';
import { expect } from 'chai';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import { C1, ep, outboundPort, startUpstream, tables, type Upstream } from './helpers.js';

/** Writes `data` (string parts written with a gap), collects everything until close or `ms`. */
function raw(port: number, parts: string[], ms = 1500, gapMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, ms);
    sock.on('data', (d) => {
      out += d.toString('latin1');
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('error', reject);
    sock.on('connect', async () => {
      for (const p of parts) {
        sock.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

const statusLines = (out: string) => out.split('\r\n').filter((l) => l.startsWith('HTTP/1.1 '));

describe('proxy HTTP/1.1 downstream server (raw sockets)', () => {
  let up: Upstream;
  let proxy: SidecarProxy;
  let port: number;

  before(async () => {
    up = await startUpstream('up');
    proxy = new SidecarProxy({
      adminPort: null,
      statsPort: null,
      healthPort: null,
      listeners: { address: '127.0.0.1', ports: { virtualOutbound: 0 }, headersTimeoutMs: 300 },
      logger: createLogger('error'),
    });
    await proxy.start();
    await proxy.applyTables(
      tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(up)] }),
    );
    port = outboundPort(proxy);
  });
  after(async () => {
    await proxy.stop(100);
    await up.close();
  });

  const GET = 'GET / HTTP/1.1\r\nHost: reviews:9080\r\n\r\n';

  it('answers pipelined requests in order on one connection', async () => {
    const out = await raw(port, [GET + GET.replace('GET /', 'GET /second')], 500);
    expect(statusLines(out)).to.deep.equal(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(up.seen.slice(-2).map((s) => s.url)).to.deep.equal(['/', '/second']);
  });

  it('rejects Content-Length together with Transfer-Encoding (smuggling) without reaching the upstream', async () => {
    const before = up.seen.length;
    const out = await raw(port, [
      'POST / HTTP/1.1\r\nHost: reviews:9080\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ]);
    expect(statusLines(out)).to.deep.equal(['HTTP/1.1 400 content-length with transfer-encoding']);
    expect(up.seen.length).to.equal(before);
  });

  it('rejects conflicting Content-Lengths, obs-fold, bad chunk sizes and unknown transfer codings', async () => {
    const host = 'Host: reviews:9080\r\n';
    expect(
      await raw(port, [`POST / HTTP/1.1\r\n${host}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`]),
    ).to.match(/^HTTP\/1.1 400 /);
    expect(await raw(port, [`GET / HTTP/1.1\r\n${host}X-A: 1\r\n  folded\r\n\r\n`])).to.match(
      /^HTTP\/1.1 400 /,
    );
    expect(
      await raw(port, [`POST / HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n`]),
    ).to.match(/HTTP\/1.1 400 bad chunked encoding/);
    expect(await raw(port, [`POST / HTTP/1.1\r\n${host}Transfer-Encoding: gzip\r\n\r\n`])).to.match(
      /^HTTP\/1.1 501 /,
    );
    expect(await raw(port, ['GET / HTTP/1.1\r\n\r\n'])).to.match(/^HTTP\/1.1 400 missing host/);
    expect(await raw(port, ['GET / HTTP/2.0\r\nHost: x\r\n\r\n'])).to.match(/^HTTP\/1.1 505 /);
  });

  it('decodes a valid chunked request body and forwards it', async () => {
    const out = await raw(
      port,
      [
        'POST /c HTTP/1.1\r\nHost: reviews:9080\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
        '4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n',
      ],
      2000,
      20,
    );
    expect(statusLines(out)).to.deep.equal(['HTTP/1.1 200 OK']);
    expect(up.seen.at(-1)!.body).to.equal('Wikipedia');
  });

  it('answers 431 to an oversized head and 408 to a head that never completes', async () => {
    const huge = `GET / HTTP/1.1\r\nHost: reviews:9080\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`;
    expect(await raw(port, [huge])).to.match(/^HTTP\/1.1 431 /);
    const slow = await raw(port, ['GET / HTTP/1.1\r\n', 'Host: reviews:9080\r\n'], 2000, 50);
    expect(slow).to.match(/^HTTP\/1.1 408 /);
  });

  it('sends 100 Continue for Expect: 100-continue, and closes HTTP/1.0 connections without keep-alive', async () => {
    const out = await raw(
      port,
      [
        'POST / HTTP/1.1\r\nHost: reviews:9080\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n',
        'hi',
      ],
      2000,
      50,
    );
    expect(out.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).to.equal(true);
    const http10 = await raw(port, ['GET / HTTP/1.0\r\nHost: reviews:9080\r\n\r\n'], 2000);
    expect(http10).to.match(/^HTTP\/1.1 200 OK/);
    expect(http10).to.contain('connection: close');
    // HTTP/1.0 keep-alive, but the upstream body has no length: the close must delimit it.
    const http10ka = await raw(
      port,
      ['GET / HTTP/1.0\r\nHost: reviews:9080\r\nConnection: keep-alive\r\n\r\n'],
      1000,
    );
    expect(http10ka).to.contain('connection: close');
    expect(http10ka.endsWith('\r\n\r\nup')).to.equal(true);
  });

  it('refuses CONNECT (no tunnelling yet) with 405', async () => {
    expect(await raw(port, ['CONNECT reviews:443 HTTP/1.1\r\nHost: reviews:443\r\n\r\n'])).to.match(
      /^HTTP\/1.1 405 /,
    );
  });
});
