import type http2 from 'node:http2';
import { expect } from 'chai';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { Route } from '../../src/tables/index.js';
import { C1, deadPort, ep, outboundPort, startProxy, tables } from './helpers.js';
import {
  GRPC_HEADERS,
  GrpcReader,
  grpcCall,
  grpcError,
  grpcFrame,
  grpcRespond,
  type H2Upstream,
  h2connect,
  h2tables,
  readGrpc,
  sleep,
  startH2Upstream,
} from './http2-helpers.js';

const SVC = '/shop.Reviews/';

describe('proxy gRPC: trailers, streaming, retries, local replies, metrics', () => {
  let proxy: SidecarProxy | undefined;
  let up: H2Upstream | undefined;
  let client: http2.ClientHttp2Session | undefined;

  afterEach(async () => {
    client?.close();
    await proxy?.stop(100);
    await up?.close();
    proxy = up = client = undefined;
  });

  const fwd = (extra: Partial<NonNullable<Route['forward']>> = {}, more: Partial<Route> = {}): Route => ({
    match: { path: { prefix: SVC } },
    forward: { clusters: [{ cluster: C1, weight: 1 }], ...extra },
    ...more,
  });

  async function run(r: Route, port = up!.port): Promise<http2.ClientHttp2Session> {
    proxy = await startProxy(h2tables(tables([r], { [C1]: [ep({ port })] }), 'grpc', 'http2'));
    client = await h2connect(outboundPort(proxy));
    return client;
  }

  /** Upstream implementing a few methods by hand. */
  function service(): Promise<H2Upstream> {
    return startH2Upstream('grpc', (stream, headers) => {
      const path = String(headers[':path']);
      if (path === `${SVC}Unary`) {
        readGrpc(stream, (msgs) =>
          grpcRespond(stream, [`echo:${msgs.join(',')}`], 0, { 'x-trailer': 't1', 'grpc-message': 'fine' }),
        );
      } else if (path === `${SVC}ServerStream`) {
        readGrpc(stream, () => {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          let i = 0;
          const t = setInterval(() => {
            if (stream.destroyed) return clearInterval(t);
            stream.write(grpcFrame(`m${i++}`));
            if (i === 5) {
              clearInterval(t);
              stream.end();
            }
          }, 60);
        });
      } else if (path === `${SVC}Bidi`) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        const reader = new GrpcReader();
        stream.on('data', (c: Buffer) => {
          for (const m of reader.push(c)) stream.write(grpcFrame(`pong:${m}`));
        });
        stream.on('end', () => stream.end());
      } else if (path === `${SVC}Slow`) {
        stream.resume();
        setTimeout(() => !stream.destroyed && grpcRespond(stream, ['late']), 1000);
      } else {
        stream.resume();
        grpcError(stream, 12, 'unknown method');
      }
    });
  }

  it('relays a unary call with its trailers (grpc-status, grpc-message, custom)', async () => {
    up = await service();
    const c = await run(fwd());
    const r = await grpcCall(c, `${SVC}Unary`, ['hi']);
    expect(r.status).to.equal(200);
    expect(r.messages).to.deep.equal(['echo:hi']);
    expect(r.trailers).to.not.equal(null);
    expect(r.trailers!['grpc-status']).to.equal('0');
    expect(r.trailers!['grpc-message']).to.equal('fine');
    expect(r.trailers!['x-trailer']).to.equal('t1');
    expect(up.seen[0]!.headers.te).to.equal('trailers');
    // An upstream trailers-only error stays trailers-only.
    const e = await grpcCall(c, `${SVC}Nope`, ['x']);
    expect(e.headersOnly).to.equal(true);
    expect(e.grpcStatus).to.equal('12');
    expect(e.grpcMessage).to.equal('unknown method');
  });

  it('streams server messages as they come (first before the stream ends)', async () => {
    up = await service();
    const c = await run(fwd());
    const req = c.request({
      ':method': 'POST',
      ':path': `${SVC}ServerStream`,
      ':authority': 'reviews:9080',
      ...GRPC_HEADERS,
    });
    req.end(grpcFrame('go'));
    const reader = new GrpcReader();
    const arrivals: number[] = [];
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on('data', (d: Buffer) => {
      for (const _ of reader.push(d)) arrivals.push(performance.now());
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    await new Promise((r) => req.on('end', r));
    const end = performance.now();
    expect(reader.messages).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(end - arrivals[0]!).to.be.greaterThan(150); // 4 more messages 60 ms apart followed it
    expect(trailers?.['grpc-status']).to.equal('0');
  });

  it('streams client messages upstream before the client finishes (client-streaming)', async () => {
    const received: number[] = [];
    up = await startH2Upstream('cs', (stream) => {
      const reader = new GrpcReader();
      stream.on('data', (c: Buffer) => {
        for (const _ of reader.push(c)) received.push(performance.now());
      });
      stream.on('end', () => grpcRespond(stream, [`count:${reader.messages.length}`]));
    });
    const c = await run(fwd());
    const req = c.request({
      ':method': 'POST',
      ':path': `${SVC}Upload`,
      ':authority': 'reviews:9080',
      ...GRPC_HEADERS,
    });
    const reader = new GrpcReader();
    req.on('data', (d: Buffer) => reader.push(d));
    const done = new Promise((r) => req.on('end', r));
    for (let i = 0; i < 4; i++) {
      req.write(grpcFrame(`part${i}`));
      await sleep(50);
    }
    const endSent = performance.now();
    req.end();
    await done;
    expect(reader.messages).to.deep.equal(['count:4']);
    expect(received.length).to.equal(4);
    expect(endSent - received[0]!).to.be.greaterThan(100);
  });

  it('carries bidirectional streams message by message (ping-pong would deadlock if buffered)', async () => {
    up = await service();
    const c = await run(fwd());
    const req = c.request({
      ':method': 'POST',
      ':path': `${SVC}Bidi`,
      ':authority': 'reviews:9080',
      ...GRPC_HEADERS,
    });
    const reader = new GrpcReader();
    let waiter: ((m: string) => void) | null = null;
    req.on('data', (d: Buffer) => {
      for (const m of reader.push(d)) waiter?.(m);
    });
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on('trailers', (t) => {
      trailers = t;
    });
    for (let i = 0; i < 3; i++) {
      const got = new Promise<string>((r) => {
        waiter = r;
      });
      req.write(grpcFrame(`ping${i}`));
      expect(await got).to.equal(`pong:ping${i}`);
    }
    req.end();
    await new Promise((r) => req.on('end', r));
    expect(trailers?.['grpc-status']).to.equal('0');
  });

  it('retries UNAVAILABLE when retryOn lists unavailable, not otherwise', async () => {
    up = await startH2Upstream('flaky', (stream, _h, n) => {
      readGrpc(stream, () =>
        n % 2 === 1 ? grpcError(stream, 14, 'try later') : grpcRespond(stream, [`ok${n}`]),
      );
    });
    let c = await run(fwd({ retries: { attempts: 2, retryOn: ['unavailable'], backoffBaseMs: 5 } }));
    const r = await grpcCall(c, `${SVC}Unary`, ['x']);
    expect(r.grpcStatus).to.equal('0');
    expect(r.messages).to.deep.equal(['ok2']);
    expect(up.seen.length).to.equal(2);
    expect(proxy!.prometheus()).to.match(
      /request_protocol="grpc",grpc_response_status="0",[^}]*response_code="200"/,
    );

    client!.close();
    await proxy!.stop(100);
    c = await run(fwd({ retries: { attempts: 2, retryOn: ['5xx', 'deadline-exceeded'], backoffBaseMs: 5 } }));
    const r2 = await grpcCall(c, `${SVC}Unary`, ['x']);
    expect(r2.grpcStatus).to.equal('14');
    expect(r2.headersOnly).to.equal(true);
    expect(up.seen.length).to.equal(3);
  });

  it('answers no route with trailers-only UNIMPLEMENTED (HTTP 200)', async () => {
    up = await service();
    const c = await run(fwd());
    const r = await grpcCall(c, '/other.Service/Call', ['x']);
    expect(r.status).to.equal(200);
    expect(r.headersOnly).to.equal(true);
    expect(r.headers['content-type']).to.equal('application/grpc');
    expect(r.grpcStatus).to.equal('12');
    expect(proxy!.prometheus()).to.match(
      /request_protocol="grpc",grpc_response_status="12",[^}]*response_code="200",response_flags="NR"\} 1/,
    );
  });

  it('answers fault aborts with their grpcStatus, or the mapped httpStatus', async () => {
    up = await service();
    let c = await run(fwd({}, { fault: { abort: { grpcStatus: 8 } } }));
    const r = await grpcCall(c, `${SVC}Unary`, ['x']);
    expect(r.status).to.equal(200);
    expect(r.headersOnly).to.equal(true);
    expect(r.grpcStatus).to.equal('8');
    expect(r.grpcMessage).to.equal('fault filter abort');
    expect(up.seen.length).to.equal(0);
    expect(proxy!.prometheus()).to.match(
      /grpc_response_status="8",[^}]*response_code="200",response_flags="FI"\} 1/,
    );

    client!.close();
    await proxy!.stop(100);
    c = await run(fwd({}, { fault: { abort: { httpStatus: 503 } } }));
    expect((await grpcCall(c, `${SVC}Unary`, ['x'])).grpcStatus).to.equal('14');
  });

  it('answers a route timeout with DEADLINE_EXCEEDED and a dead upstream with UNAVAILABLE', async () => {
    up = await service();
    let c = await run(fwd({ timeoutMs: 150 }));
    const r = await grpcCall(c, `${SVC}Slow`, ['x']);
    expect(r.status).to.equal(200);
    expect(r.grpcStatus).to.equal('4');
    expect(r.grpcMessage).to.equal('upstream request timeout');
    expect(r.ms).to.be.within(140, 900);
    expect(proxy!.prometheus()).to.match(
      /grpc_response_status="4",[^}]*response_code="200",response_flags="UT"\} 1/,
    );

    client!.close();
    await proxy!.stop(100);
    c = await run(fwd(), await deadPort());
    const dead = await grpcCall(c, `${SVC}Unary`, ['x']);
    expect(dead.grpcStatus).to.equal('14');
    expect(dead.headersOnly).to.equal(true);
  });

  it('counts gRPC calls by grpc_response_status, apart from plain HTTP/2 requests', async () => {
    up = await service();
    const c = await run({ forward: { clusters: [{ cluster: C1, weight: 1 }] } });
    await grpcCall(c, `${SVC}Unary`, ['a']);
    await grpcCall(c, `${SVC}Unary`, ['b']);
    await grpcCall(c, `${SVC}Missing`, ['c']);
    await new Promise<void>((resolve, reject) => {
      const req = c.request({ ':path': '/plain', ':authority': 'reviews:9080' });
      req.on('error', reject);
      req.resume();
      req.on('end', () => resolve());
    });
    const prom = proxy!.prometheus();
    expect(prom).to.match(
      /istio_requests_total\{[^}]*request_protocol="grpc",grpc_response_status="0",[^}]*\} 2/,
    );
    expect(prom).to.match(
      /istio_requests_total\{[^}]*request_protocol="grpc",grpc_response_status="12",[^}]*\} 1/,
    );
    expect(prom).to.match(
      /istio_requests_total\{[^}]*request_protocol="http",grpc_response_status="",[^}]*\} 1/,
    );
  });
});
