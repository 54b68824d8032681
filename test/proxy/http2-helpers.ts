/**
 * HTTP/2 and gRPC test harness: real node:http2 servers and clients on loopback, gRPC framing
 * done by hand (5-byte length prefix, application/grpc, grpc-status trailers) since no gRPC
 * library is installed. No mocked sockets.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import type { Listener, ProxyTables } from '../../src/tables/index.js';

export interface H2Seen {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

export interface H2Upstream {
  port: number;
  server: http2.Http2Server;
  seen: H2Seen[];
  /** Sessions accepted so far. */
  sessions: number;
  close(): Promise<void>;
}

export type H2Behaviour = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  n: number,
) => void;

/**
 * An h2c upstream. With a behaviour, the behaviour owns the stream (and its body); without,
 * it reads the body and answers 200 `<name>` with x-upstream and an echo of the body size.
 */
export async function startH2Upstream(name: string, behaviour?: H2Behaviour): Promise<H2Upstream> {
  const server = http2.createServer();
  const up: H2Upstream = {
    port: 0,
    server,
    seen: [],
    sessions: 0,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sessions) s.destroy();
      }),
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    up.sessions++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  let n = 0;
  server.on('stream', (stream, headers) => {
    n++;
    stream.on('error', () => {});
    if (behaviour) {
      up.seen.push({ headers, body: Buffer.alloc(0) });
      behaviour(stream, headers, n);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      up.seen.push({ headers, body });
      if (stream.destroyed) return;
      stream.respond({
        ':status': 200,
        'content-type': 'text/plain',
        'x-upstream': name,
        'x-body-bytes': body.length,
      });
      stream.end(name);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as AddressInfo).port;
  return up;
}

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | null;
  /** The response was a single HEADERS frame with END_STREAM (gRPC trailers-only). */
  headersOnly: boolean;
  ms: number;
}

export function h2connect(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${port}`);
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/** One request on a session; the whole response is collected. */
export function h2request(
  client: http2.ClientHttp2Session,
  opts: {
    path?: string;
    method?: string;
    authority?: string;
    headers?: http2.OutgoingHttpHeaders;
    body?: Buffer | string;
  } = {},
): Promise<H2Reply> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = client.request(
      {
        ':method': opts.method ?? 'GET',
        ':path': opts.path ?? '/',
        ':authority': opts.authority ?? 'reviews:9080',
        ...opts.headers,
      },
      { endStream: opts.body === undefined },
    );
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    let headersOnly = false;
    const chunks: Buffer[] = [];
    req.on('response', (h, flags) => {
      status = Number(h[':status']);
      headers = h;
      headersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () =>
      resolve({
        status,
        headers,
        body: Buffer.concat(chunks),
        trailers,
        headersOnly,
        ms: performance.now() - start,
      }),
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
  });
}

// ---- gRPC framing ----

export function grpcFrame(msg: Buffer | string): Buffer {
  const body = typeof msg === 'string' ? Buffer.from(msg) : msg;
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Incremental parser of length-prefixed gRPC messages. */
export class GrpcReader {
  private buf = Buffer.alloc(0);
  readonly messages: string[] = [];
  push(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const got: string[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) break;
      got.push(this.buf.subarray(5, 5 + len).toString());
      this.buf = this.buf.subarray(5 + len);
    }
    this.messages.push(...got);
    return got;
  }
}

export const GRPC_HEADERS = { 'content-type': 'application/grpc', te: 'trailers' } as const;

/** A gRPC call: sends `messages` (then ends unless `keepOpen`), collects messages and status. */
export function grpcCall(
  client: http2.ClientHttp2Session,
  path: string,
  messages: string[],
  extra: http2.OutgoingHttpHeaders = {},
): Promise<
  H2Reply & { messages: string[]; grpcStatus: string | undefined; grpcMessage: string | undefined }
> {
  const body = Buffer.concat(messages.map((m) => grpcFrame(m)));
  return h2request(client, {
    method: 'POST',
    path,
    headers: { ...GRPC_HEADERS, ...extra },
    body,
  }).then((r) => {
    const reader = new GrpcReader();
    reader.push(r.body);
    const src = r.trailers ?? r.headers;
    return {
      ...r,
      messages: reader.messages,
      grpcStatus: src['grpc-status'] as string | undefined,
      grpcMessage: src['grpc-message'] as string | undefined,
    };
  });
}

/** Server side: answers a gRPC stream with messages then OK trailers. */
export function grpcRespond(
  stream: http2.ServerHttp2Stream,
  messages: string[],
  status = 0,
  trailers: Record<string, string> = {},
): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(status), ...trailers }));
  for (const m of messages) stream.write(grpcFrame(m));
  stream.end();
}

/** Server side: a trailers-only gRPC error. */
export function grpcError(stream: http2.ServerHttp2Stream, status: number, message?: string): void {
  stream.respond(
    {
      ':status': 200,
      'content-type': 'application/grpc',
      'grpc-status': String(status),
      ...(message ? { 'grpc-message': message } : {}),
    },
    { endStream: true },
  );
}

/** Reads a request's gRPC messages (whole body) then calls back. */
export function readGrpc(stream: http2.ServerHttp2Stream, done: (messages: string[]) => void): void {
  const reader = new GrpcReader();
  stream.on('data', (c: Buffer) => reader.push(c));
  stream.on('end', () => done(reader.messages));
}

// ---- tables ----

/** Makes the helper tables' outbound listener an HTTP/2 one and its clusters use `upstream`. */
export function h2tables(
  t: ProxyTables,
  listenerProtocol: Listener['protocol'],
  upstream: 'http1' | 'http2' | 'auto',
): ProxyTables {
  t.listeners[0]!.protocol = listenerProtocol;
  for (const c of t.clusters) c.upstreamProtocol = upstream;
  return t;
}

/** An upstream serving HTTP/1.1 and h2c on one port (for `auto` clusters). */
export async function startDualUpstream(): Promise<{
  port: number;
  protocols: string[];
  close(): Promise<void>;
}> {
  const protocols: string[] = [];
  const h1 = http.createServer((req, res) => {
    protocols.push(`h1:${req.headers.host}`);
    req.resume();
    req.on('end', () => res.end('h1'));
  });
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    protocols.push(`h2:${headers[':authority']}`);
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end('h2');
    });
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.once('data', (d) => {
      sock.pause();
      sock.unshift(d);
      if (d.toString('latin1').startsWith('PRI * HTTP/2.0')) {
        h2.emit('connection', sock); // node:http2 reads what is buffered itself
      } else {
        h1.emit('connection', sock);
        sock.resume();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    protocols,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
