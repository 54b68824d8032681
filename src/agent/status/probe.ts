/**
 * Runs one original app probe the way kubelet would: HTTP(S) GET (success 200-399), TCP
 * connect, or the gRPC health protocol (grpc.health.v1.Health/Check == SERVING). Every probe
 * is bounded by its timeoutSeconds (kubelet's default 1 s).
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { AppProber, GrpcProbe, HttpGetProbe, TcpSocketProbe } from './probers.js';

export interface ProbeResult {
  /** HTTP status for kubelet: 200 on success; the app's code, or 500, on failure. */
  status: number;
  /** Why it failed (for the response body and debug logs). */
  detail: string;
}

export interface ProbeOptions {
  /** Host the probes dial when the original probe names none (default 127.0.0.1). */
  defaultHost: string;
  /** Extra headers from kubelet's request to forward (e.g. user-agent). */
  forwardHeaders?: Record<string, string>;
}

const ok = (detail = 'ok'): ProbeResult => ({ status: 200, detail });
const fail = (detail: string, status = 500): ProbeResult => ({ status, detail });

export function runProbe(p: AppProber, opts: ProbeOptions): Promise<ProbeResult> {
  const timeoutMs = Math.round((p.timeoutSeconds ?? 1) * 1000);
  if (p.httpGet) return httpProbe(p.httpGet, opts, timeoutMs);
  if (p.tcpSocket) return tcpProbe(p.tcpSocket, opts, timeoutMs);
  if (p.grpc) return grpcProbe(p.grpc, opts, timeoutMs);
  return Promise.resolve(fail('no probe action'));
}

function httpProbe(h: HttpGetProbe, opts: ProbeOptions, timeoutMs: number): Promise<ProbeResult> {
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/isthmus', ...opts.forwardHeaders };
  for (const { name, value } of h.httpHeaders ?? []) headers[name.toLowerCase()] = value;
  const lib = h.scheme === 'HTTPS' ? https : http;
  const path = h.path ? (h.path.startsWith('/') ? h.path : `/${h.path}`) : '/';
  return new Promise((resolve) => {
    const req = lib.request(
      {
        host: h.host ?? opts.defaultHost,
        port: h.port,
        path,
        method: 'GET',
        headers,
        agent: false,
        timeout: timeoutMs,
        ...(h.scheme === 'HTTPS' ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(
          code >= 200 && code < 400 ? ok(`HTTP ${code}`) : fail(`HTTP ${code}`, code >= 400 ? code : 500),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve(fail(err.message)));
    req.end();
  });
}

function tcpProbe(t: TcpSocketProbe, opts: ProbeOptions, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host: t.host ?? opts.defaultHost, port: t.port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(ok('connected'));
    });
    s.once('timeout', () => s.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    s.once('error', (err) => resolve(fail(err.message)));
  });
}

/** HealthCheckRequest{service} as a length-prefixed gRPC message. */
function healthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg =
    name.length > 0 ? Buffer.concat([Buffer.from([0x0a, ...varint(name.length)]), name]) : Buffer.alloc(0);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return frame;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** HealthCheckResponse.status (field 1, varint) of the first message; -1 when absent. */
function healthStatus(body: Buffer): number {
  if (body.length < 5) return -1;
  const msg = body.subarray(5, 5 + body.readUInt32BE(1));
  let p = 0;
  while (p < msg.length) {
    const tag = msg[p++]!;
    if (tag === 0x08) return msg[p] ?? -1;
    if ((tag & 7) === 0) while (p < msg.length && msg[p++]! & 0x80);
    else if ((tag & 7) === 2) p += 1 + msg[p]!;
    else return -1;
  }
  return 0; // proto3 default: UNKNOWN
}

function grpcProbe(g: GrpcProbe, opts: ProbeOptions, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const host = opts.defaultHost.includes(':') ? `[${opts.defaultHost}]` : opts.defaultHost;
    const session = http2.connect(`http://${host}:${g.port}`);
    const timer = setTimeout(() => done(fail(`timeout after ${timeoutMs} ms`)), timeoutMs);
    let settled = false;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    session.on('error', (err) => done(fail(err.message)));
    const req = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (err) => done(fail(err.message)));
    req.on('end', () => {
      if (grpcStatus !== '0') return done(fail(`grpc-status ${grpcStatus ?? '(none)'}`));
      const status = healthStatus(Buffer.concat(chunks));
      done(status === 1 ? ok('SERVING') : fail(`health status ${status}`));
    });
    req.end(healthRequest(g.service ?? ''));
  });
}
