/**
 * The original destination of a connection captured by the REDIRECT rules, read through the
 * native addon in native/original-dst (build it with `npm run build:native`).
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

export interface OriginalDst {
  address: string;
  port: number;
  family: 4 | 6;
}

interface Addon {
  getOriginalDst(fd: number): OriginalDst;
}

// Same relative path from src/iptables/ (tsx) and dist/iptables/ (compiled build).
const ADDON_PATH = '../../native/original-dst/build/Release/original_dst.node';

let addon: Addon | undefined;

function load(): Addon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    addon = require(ADDON_PATH) as Addon;
  } catch (err) {
    throw new Error(
      `original-dst native addon is not built (${(err as Error).message.split('\n')[0]}); run \`npm run build:native\``,
    );
  }
  return addon;
}

/** Original destination of the connection on file descriptor `fd`. */
export function getOriginalDstFd(fd: number): OriginalDst {
  return load().getOriginalDst(fd);
}

/**
 * Original destination of an accepted socket. Throws an Error with `code` ENOENT when the
 * connection was not redirected (no NAT entry), e.g. it reached the listener directly.
 *
 * Node offers no public way to get a socket's file descriptor, so this reads the internal
 * `socket._handle.fd`: on Unix a TCP handle (TCPWrap) exposes its fd there. It is stable in
 * practice across Node 16-24 and the test suite exercises it; if Node ever hides it, this is
 * the one place to change. The fd is only valid while the socket is open.
 */
export function getOriginalDst(socket: Socket): OriginalDst {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new Error('socket has no file descriptor (not connected, already closed, or not a TCP socket)');
  }
  return getOriginalDstFd(fd);
}
