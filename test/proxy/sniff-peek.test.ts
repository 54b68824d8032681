/**
 * peek() on real loopback sockets: the sniff timeout decides only when nothing more is
 * waiting to be read, even when the event loop was stalled past it (a loaded machine).
 */
import net from 'node:net';
import { expect } from 'chai';
import { classifyProtocol, peek, Sniffed, type SniffResult } from '../../src/proxy/tcp/sniff.js';

/**
 * Connects a client that writes `bytes` (if any) at once, then peeks the server side with a
 * `timeoutMs` sniff timeout and, right after, blocks the event loop for `stallMs` (the
 * client's bytes are in the server socket's kernel buffer by then).
 */
function peekAfterStall(
  bytes: string | null,
  timeoutMs: number,
  stallMs: number,
): Promise<{ result: SniffResult | undefined; first: string }> {
  return new Promise((resolve, reject) => {
    let server: net.Socket | undefined;
    let client: net.Socket | undefined;
    let wrote = false;
    const srv = net.createServer({ pauseOnConnect: true }, (s) => {
      server = s;
      start();
    });
    const start = () => {
      if (server === undefined || !wrote) return;
      const s = server;
      peek(s, classifyProtocol, timeoutMs, 64, (result) => {
        // The peeked bytes were put back: the next reader sees them.
        s.once('data', (d: Buffer) => finish(result, d.toString('latin1')));
        s.resume();
        if (bytes === null) finish(result, '');
      });
      const end = performance.now() + stallMs;
      while (performance.now() < end);
    };
    let settled = false;
    const finish = (result: SniffResult | undefined, first: string) => {
      if (settled) return;
      settled = true;
      client?.destroy();
      server?.destroy();
      srv.close();
      resolve({ result, first });
    };
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1', () => {
        if (bytes !== null) c.write(bytes);
        wrote = true;
        start();
      });
      c.on('error', reject);
      client = c;
    });
  });
}

describe('proxy sniffing: peek and its timeout', () => {
  it('classifies bytes that arrived before the timeout even when the event loop stalled past it', async () => {
    const got = await peekAfterStall('GET / HTTP/1.1\r\nhost: a\r\n\r\n', 20, 150);
    expect(got.result).to.equal(Sniffed.Http1);
    expect(got.first).to.equal('GET / HTTP/1.1\r\nhost: a\r\n\r\n');
  });

  it('a TLS ClientHello start is still TLS after a stall', async () => {
    const got = await peekAfterStall('\u0016\u0003\u0001\u0000\u0005hello', 20, 150);
    expect(got.result).to.equal(Sniffed.Tls);
  });

  it('times out (undefined) when the client sends nothing', async () => {
    const got = await peekAfterStall(null, 20, 0);
    expect(got.result).to.equal(undefined);
  });
});
