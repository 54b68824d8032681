/**
 * Protocol detection on the first bytes of a connection (Envoy's http_inspector and
 * tls_inspector): TLS ClientHello, HTTP/2 connection preface, HTTP/1 request line, or
 * anything else (plain TCP). `peek` reads without consuming: the bytes are pushed back so
 * whoever gets the socket next sees the whole stream.
 */
import type { Socket } from 'node:net';

export const Sniffed = { NeedMore: 0, Http1: 1, Http2: 2, Tls: 3, Other: 4 } as const;
export type SniffResult = (typeof Sniffed)[keyof typeof Sniffed];

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Request methods Envoy's http_inspector accepts (RFC 9110 and the WebDAV set). */
const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'REPORT',
  'SEARCH',
  'PURGE',
];
const METHOD_BUFFERS = METHODS.map((m) => Buffer.from(`${m} `, 'latin1'));

/** Classifies the first bytes; NeedMore when they are a prefix of more than one answer. */
export function sniff(buf: Buffer): SniffResult {
  if (buf.length === 0) return Sniffed.NeedMore;
  const b0 = buf[0]!;
  // TLS record: handshake (22), version major 3.
  if (b0 === 0x16) {
    if (buf.length < 2) return Sniffed.NeedMore;
    return buf[1] === 0x03 ? Sniffed.Tls : Sniffed.Other;
  }
  if (b0 === 0x50 /* P */) {
    const n = Math.min(buf.length, H2_PREFACE.length);
    if (buf.compare(H2_PREFACE, 0, n, 0, n) === 0) {
      // A partial preface ("P", "PR"...) may still turn out to be POST/PUT/PATCH: wait.
      return n === H2_PREFACE.length ? Sniffed.Http2 : Sniffed.NeedMore;
    }
  }
  for (const m of METHOD_BUFFERS) {
    const n = Math.min(buf.length, m.length);
    if (buf.compare(m, 0, n, 0, n) === 0) return n === m.length ? Sniffed.Http1 : Sniffed.NeedMore;
  }
  return Sniffed.Other;
}

/**
 * Reads the first bytes of `socket` until `classify` decides (anything but undefined), the
 * client half-closes, `maxBytes` arrived or `timeoutMs` passed with nothing more to read
 * (then `undefined`: server-first protocols never send first, so the caller falls back to
 * plain TCP). The bytes are put back with unshift and the socket is left paused; the next
 * owner resumes it. When the client already closed its side the bytes cannot be put back:
 * they come as `pending` instead (the caller must forward them itself) and the result is
 * `undefined`.
 */
export function peek<T>(
  socket: Socket,
  classify: (buf: Buffer) => T | undefined,
  timeoutMs: number,
  maxBytes: number,
  done: (result: T | undefined, pending: Buffer | null) => void,
): void {
  let buf: Buffer | null = null;
  let over = false;
  const finish = (result: T | undefined) => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    if (buf !== null && socket.readableEnded) {
      done(undefined, buf);
      return;
    }
    if (buf !== null) socket.unshift(buf);
    done(result, null);
  };
  const onData = (chunk: Buffer) => {
    buf = buf === null ? chunk : Buffer.concat([buf, chunk]);
    const r = classify(buf);
    if (r !== undefined) finish(r);
    else if (buf.length >= maxBytes) finish(undefined);
  };
  const onEnd = () => finish(undefined);
  // Timers run before I/O in a turn of the event loop: after a stall (load, GC, sync work) the
  // timer can be due while the first bytes already wait in the socket. Decide one turn later,
  // after the pending reads.
  const timer = setTimeout(finishNextTurn, timeoutMs, finish);
  socket.on('error', noop);
  socket.on('data', onData);
  socket.on('end', onEnd);
  // Listeners paused on accept (pauseOnConnect) do not start flowing by themselves.
  socket.resume();
}

function noop(): void {}

function finishNextTurn(finish: (result: undefined) => void): void {
  setImmediate(finish, undefined);
}

/** `sniff` as a `peek` classifier. */
export function classifyProtocol(buf: Buffer): SniffResult | undefined {
  const r = sniff(buf);
  return r === Sniffed.NeedMore ? undefined : r;
}
