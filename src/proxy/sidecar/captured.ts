/**
 * The original destination of a captured connection, attached to its socket so the HTTP
 * path can route by the port the app dialled (Envoy's use_original_dst). A symbol property:
 * set once per connection, read per request without allocating; it also reads through the
 * socket proxy node:http2 sessions expose.
 */
import type { Socket } from 'node:net';
import type { OriginalDst } from '../../iptables/original-dst.js';

const CAPTURED: unique symbol = Symbol('isthmus.originalDst');

interface Captured {
  [CAPTURED]?: OriginalDst;
}

export function setCaptured(socket: Socket, dst: OriginalDst): void {
  (socket as Captured)[CAPTURED] = dst;
}

export function capturedOf(socket: object | null | undefined): OriginalDst | undefined {
  return socket ? (socket as Captured)[CAPTURED] : undefined;
}

/**
 * Original destination port of the connection a request arrived on, 0 when it was not
 * captured. Knows the two downstream kinds: HTTP/1 streams (`conn.socket`) and HTTP/2
 * streams (`stream.session.socket`).
 */
export function capturedPort(stream: object): number {
  const s = stream as { conn?: { socket?: Socket }; stream?: { session?: { socket?: Socket } | undefined } };
  const socket = s.conn?.socket ?? s.stream?.session?.socket;
  return capturedOf(socket)?.port ?? 0;
}
