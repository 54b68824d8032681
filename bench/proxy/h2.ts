/**
 * HTTP/2 and gRPC through the proxy vs direct, on loopback, 1 KB responses.
 * Modes:
 *   direct      h2c client -> h2c upstream
 *   h2-h2       h2c client -> isthmus (http2 listener, http2 cluster) -> h2c upstream
 *   h2-h1       h2c client -> isthmus (http2 listener, http1 cluster) -> HTTP/1.1 upstream
 *   h1-h2       HTTP/1.1 client (h2load --h1) -> isthmus -> h2c upstream
 *   grpc-direct gRPC unary (5-byte framed 64 B request, 1 KB reply + grpc-status trailers)
 *   grpc        the same through isthmus (grpc listener, http2 cluster)
 *   node-h2-proxy / node-grpc-proxy  baseline: the simplest node:http2 proxy (one upstream
 *               session, headers copied, bodies piped), for what node:http2 itself costs
 * The proxy is pinned to CPU 0 and the upstream and load generator to CPU 1 (taskset, 2+
 * CPUs). Load: h2load (nghttp2-client) when installed, else a bounded node:http2 generator.
 * Every run is bounded in time.
 *
 *   npx tsx bench/proxy/h2.ts [--seconds 5] [--rounds 2] [--clients 16] [--streams 8]
 *     [--modes direct,h2-h2,node-h2-proxy,h2-h1,h1-h2,grpc-direct,grpc,node-grpc-proxy]
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const BODY = Buffer.alloc(1024, 'x');
const GRPC_REQ = grpcFrame(Buffer.alloc(64, 'r'));
const GRPC_REPLY = grpcFrame(BODY);

function grpcFrame(msg: Buffer): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

// ---------------------------------------------------------------- roles (child processes)

async function upstreamRole(): Promise<void> {
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  if (process.env.UP_NODELAY) h2.on('connection', (s: import('node:net').Socket) => s.setNoDelay(true));
  h2.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (String(headers['content-type']).startsWith('application/grpc')) {
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(GRPC_REPLY);
      });
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': BODY.length });
    stream.end(BODY);
  });
  const h1 = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  h1.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
  const p2 = (h2.address() as AddressInfo).port;
  const p1 = (h1.address() as AddressInfo).port;
  process.stdout.write(`ready ${p2} ${p1}\n`);
}

/** Baseline: the simplest node:http2 proxy (one client session, headers copied, bodies piped). */
async function nodeH2ProxyRole(port: number): Promise<void> {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  await new Promise((r) => client.once('connect', r));
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers, flags) => {
    stream.on('error', () => {});
    const end = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    const up = client.request(
      {
        ':method': headers[':method'],
        ':path': headers[':path'],
        ':authority': headers[':authority'],
        ...(headers['content-type'] ? { 'content-type': headers['content-type'], te: 'trailers' } : {}),
      },
      { endStream: end },
    );
    up.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    if (!end) stream.pipe(up);
    up.on('response', (h) => {
      if (stream.destroyed || stream.closed) {
        up.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      const out: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(h)) if (k !== ':status' && !k.startsWith(':')) out[k] = v;
      out[':status'] = h[':status'];
      const grpc = String(h['content-type']).startsWith('application/grpc');
      stream.respond(out, { waitForTrailers: grpc });
      if (grpc) {
        let trailers: http2.OutgoingHttpHeaders = {};
        up.on('trailers', (t) => {
          trailers = { 'grpc-status': t['grpc-status'] };
        });
        stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      }
      up.pipe(stream);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`ready ${(server.address() as AddressInfo).port}\n`);
}

async function proxyRole(
  listener: 'http2' | 'grpc',
  upstream: 'http1' | 'http2',
  port: number,
): Promise<void> {
  const { SidecarProxy } = await import('../../src/proxy/index.js');
  const { createLogger } = await import('../../src/proxy/log.js');
  const cluster = 'outbound|9080||upstream.bench.svc.cluster.local';
  const proxy = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    logger: createLogger('error'),
    listeners: { address: '127.0.0.1', ports: { bench: 0 } },
  });
  await proxy.start();
  const r = await proxy.applyTables({
    apiVersion: 'isthmus.io/tables/v1',
    version: 'bench',
    node: { name: 'bench-client', namespace: 'bench', app: 'bench', version: 'v1' },
    listeners: [
      { name: 'bench', direction: 'outbound', port: 9080, protocol: listener, routeConfig: '9080' },
    ],
    routeConfigs: [
      {
        name: '9080',
        virtualHosts: [
          { name: 'upstream', domains: ['*'], routes: [{ forward: { clusters: [{ cluster, weight: 1 }] } }] },
        ],
      },
    ],
    clusters: [
      {
        name: cluster,
        upstreamProtocol: upstream,
        service: { host: 'upstream.bench.svc.cluster.local', name: 'upstream', namespace: 'bench' },
      },
    ],
    endpoints: { [cluster]: [{ address: '127.0.0.1', port }] },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  process.stdout.write(`ready ${proxy.listenerPort('bench')}\n`);
}

// ---------------------------------------------------------------- driver

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Result {
  rps: number;
  meanMs: number;
  errors: number;
  cpuPer1k: number;
  rss: number;
}

const children: ChildProcess[] = [];
const pin = has('taskset') && availableParallelism() >= 2;

function spawnRole(cpu: number, ...roleArgs: string[]): Promise<{ pid: number; ports: number[] }> {
  const cmd = pin ? 'taskset' : process.execPath;
  const argv = [...(pin ? ['-c', String(cpu), process.execPath] : []), '--import', 'tsx', self, ...roleArgs];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready ([\d ]+)\n/.exec(out);
      if (m) resolve({ pid: child.pid!, ports: m[1]!.trim().split(' ').map(Number) });
    });
    child.once('exit', (code) => reject(new Error(`${roleArgs[0]} exited with ${code}`)));
    setTimeout(() => reject(new Error(`${roleArgs[0]} did not start in 20 s`)), 20_000).unref();
  });
}

function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined || !existsSync(`/proc/${pid}/status`)) return Number.NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

interface LoadSpec {
  port: number;
  grpc: boolean;
  h1: boolean;
  seconds: number;
  clients: number;
  streams: number;
}

function loadH2load(s: LoadSpec): Promise<{ rps: number; meanMs: number; errors: number }> {
  const a = ['-c', String(s.clients), '-m', String(s.h1 ? 1 : s.streams), '-t', '1', '-D', String(s.seconds)];
  if (s.h1) a.push('--h1');
  a.push('-H', ':authority: upstream:9080');
  if (s.grpc) {
    const file = join(tmpdir(), 'isthmus-h2-bench-grpc.bin');
    writeFileSync(file, GRPC_REQ);
    a.push('-d', file, '-H', 'content-type: application/grpc', '-H', 'te: trailers');
  }
  a.push(`http://127.0.0.1:${s.port}/bench.Svc/Call`);
  const cmd = pin ? 'taskset' : 'h2load';
  const argv = pin ? ['-c', '1', 'h2load', ...a] : a;
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: (s.seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      const rps = /finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(stdout);
      const req =
        /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
          stdout,
        );
      const status = /status codes: (\d+) 2xx/.exec(stdout);
      const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(stdout);
      if (!rps || !req) return reject(new Error(`unexpected h2load output:\n${stdout}`));
      const meanMs = mean ? parseDuration(mean[1]!) : Number.NaN;
      const non2xx = status ? Math.max(0, Number(req[1]) - Number(status[1])) : 0;
      resolve({ rps: Number(rps[1]), meanMs, errors: Number(req[2]) + Number(req[3]) + non2xx });
    });
  });
}

function parseDuration(v: string): number {
  const n = Number.parseFloat(v);
  if (v.endsWith('us')) return n / 1000;
  if (v.endsWith('ms')) return n;
  if (v.endsWith('s')) return n * 1000;
  return n;
}

/** Fallback: `clients` sessions x `streams` concurrent streams, closed loop, bounded in time. */
async function loadNode(s: LoadSpec): Promise<{ rps: number; meanMs: number; errors: number }> {
  const sessions = await Promise.all(
    Array.from(
      { length: s.clients },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const c = http2.connect(`http://127.0.0.1:${s.port}`);
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        }),
    ),
  );
  const deadline = performance.now() + s.seconds * 1000;
  let done = 0;
  let errors = 0;
  let total = 0;
  const t0 = performance.now();
  const one = (c: http2.ClientHttp2Session): Promise<void> =>
    new Promise((resolve) => {
      const start = performance.now();
      const headers: http2.OutgoingHttpHeaders = {
        ':path': '/bench.Svc/Call',
        ':authority': 'upstream:9080',
      };
      if (s.grpc)
        Object.assign(headers, { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' });
      const req = c.request(headers, { endStream: !s.grpc });
      req.on('response', (h) => {
        if (h[':status'] !== 200) errors++;
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.resume();
      req.on('end', () => {
        done++;
        total += performance.now() - start;
        resolve();
      });
      if (s.grpc) req.end(GRPC_REQ);
    });
  await Promise.all(
    sessions.flatMap((c) =>
      Array.from({ length: s.streams }, async () => {
        while (performance.now() < deadline) await one(c);
      }),
    ),
  );
  const secs = (performance.now() - t0) / 1000;
  for (const c of sessions) c.close();
  return { rps: done / secs, meanMs: total / Math.max(done, 1), errors };
}

async function driver(): Promise<void> {
  const seconds = Number(opt('seconds', '5'));
  const rounds = Number(opt('rounds', '2'));
  const clients = Number(opt('clients', '16'));
  const streams = Number(opt('streams', '8'));
  const modes = opt('modes', 'direct,h2-h2,node-h2-proxy,h2-h1,h1-h2,grpc-direct,grpc,node-grpc-proxy').split(
    ',',
  );
  const h2load = has('h2load');
  const up = await spawnRole(1, 'upstream');
  const [upH2, upH1] = up.ports as [number, number];
  const targets = new Map<string, { port: number; pid?: number; grpc: boolean; h1: boolean }>();
  for (const mode of modes) {
    if (mode === 'direct') targets.set(mode, { port: upH2, grpc: false, h1: false });
    else if (mode === 'node-h2-proxy' || mode === 'node-grpc-proxy') {
      const p = await spawnRole(0, 'node-h2-proxy', String(upH2));
      targets.set(mode, { port: p.ports[0]!, pid: p.pid, grpc: mode === 'node-grpc-proxy', h1: false });
    } else if (mode === 'grpc-direct') targets.set(mode, { port: upH2, grpc: true, h1: false });
    else {
      const [listener, upstream, port] =
        mode === 'h2-h1'
          ? (['http2', 'http1', upH1] as const)
          : mode === 'grpc'
            ? (['grpc', 'http2', upH2] as const)
            : (['http2', 'http2', upH2] as const);
      const p = await spawnRole(0, 'proxy', listener, upstream, String(port));
      targets.set(mode, { port: p.ports[0]!, pid: p.pid, grpc: mode === 'grpc', h1: mode === 'h1-h2' });
    }
  }
  const best = new Map<string, Result>();
  for (let round = 0; round < rounds; round++) {
    for (const mode of modes) {
      const t = targets.get(mode)!;
      const spec = { port: t.port, grpc: t.grpc, h1: t.h1, seconds, clients, streams };
      const run = h2load ? loadH2load : loadNode;
      await run({ ...spec, seconds: Math.min(1, seconds) }); // warm-up
      const cpu0 = cpuSeconds(t.pid);
      const t0 = performance.now();
      const r = await run(spec);
      const requests = (r.rps * (performance.now() - t0)) / 1000;
      const res = { ...r, cpuPer1k: ((cpuSeconds(t.pid) - cpu0) / requests) * 1000, rss: rssMb(t.pid) };
      const prev = best.get(mode);
      if (!prev || res.rps > prev.rps) best.set(mode, res);
    }
  }
  const load = h2load ? 'h2load' : 'node:http2 generator';
  console.log(
    `\n${clients} clients x ${streams} streams (h1-h2: ${clients} HTTP/1.1 connections), 1 KB responses, ` +
      `best of ${rounds} x ${seconds}s, load: ${load}, pinned: ${pin}`,
  );
  console.log('mode          rps       mean ms   proxy core per 1k rps   proxy RSS MB');
  for (const mode of modes) {
    const r = best.get(mode)!;
    const cpu = Number.isNaN(r.cpuPer1k) ? '     -' : r.cpuPer1k.toFixed(3).padStart(6);
    const rss = Number.isNaN(r.rss) ? '   -' : r.rss.toFixed(0).padStart(4);
    console.log(
      `${mode.padEnd(12)} ${r.rps.toFixed(0).padStart(7)}   ${r.meanMs.toFixed(2).padStart(7)}   ${cpu}                  ${rss}${r.errors ? `   errors ${r.errors}` : ''}`,
    );
  }
}

const role = args[0];
if (role === 'upstream') await upstreamRole();
else if (role === 'node-h2-proxy') await nodeH2ProxyRole(Number(args[1]));
else if (role === 'proxy')
  await proxyRole(args[1] as 'http2' | 'grpc', args[2] as 'http1' | 'http2', Number(args[3]));
else {
  try {
    await driver();
  } finally {
    for (const c of children) c.kill('SIGTERM');
  }
}
if (role === 'upstream' || role === 'proxy' || role === 'node-h2-proxy') {
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}
