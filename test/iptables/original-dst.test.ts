import { closeSync, openSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { getOriginalDst, getOriginalDstFd } from '../../src/iptables/original-dst.js';

/** Calls `fn` and returns what it threw. */
function thrown(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected an exception');
}

describe('original destination addon', () => {
  it('names the errno when the fd is not a socket', () => {
    const fd = openSync('/dev/null', 'r');
    try {
      const err = thrown(() => getOriginalDstFd(fd));
      expect(err.code).to.equal('ENOTSOCK');
      expect(err.message).to.match(/getsockname failed: ENOTSOCK/);
    } finally {
      closeSync(fd);
    }
  });

  it('rejects a bad fd argument', () => {
    expect(() => getOriginalDstFd(-1)).to.throw(/fd must be >= 0/);
  });

  it('reads an accepted loopback socket: its own address, or ENOENT without conntrack', async () => {
    let server: Server | undefined;
    let client: Socket | undefined;
    try {
      const accepted = new Promise<Socket>((resolve) => {
        server = createServer(resolve).listen(0, '127.0.0.1');
      });
      await new Promise((resolve) => server!.once('listening', resolve));
      const { port } = server!.address() as { port: number };
      client = connect(port, '127.0.0.1');
      const socket = await accepted;
      // Not redirected: with conntrack active the "original" destination is the real one;
      // without it (no nat rules loaded in this namespace) the kernel answers ENOENT.
      try {
        expect(getOriginalDst(socket)).to.deep.equal({ address: '127.0.0.1', port, family: 4 });
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code, String(err)).to.equal('ENOENT');
      }
      socket.destroy();
      expect(() => getOriginalDst(socket)).to.throw(/no file descriptor/);
    } finally {
      client?.destroy();
      server?.close();
    }
  });
});
