/**
 * Cost of tracing and access logging on the proxy's request path: one in-process SidecarProxy
 * per mode (outbound listener -> 1 KB upstream in a child process), driven by wrk (or the Node
 * generator), best of N interleaved rounds. Modes:
 *   off        no tracing, no access log (the default)
 *   trace-1    Zipkin tracing, 1% sampling (Istio's default), spans posted to a collector here
 *   trace-100  Zipkin tracing, 100% sampling
 *   log-json   JSON access log to a file (tracing off)
 * Reports rps and this process's CPU per 1,000 requests (proxy + the tiny collector), then a
 * micro-benchmark of the per-request telemetry work alone (ns per request, same process):
 * trace propagation of an unsampled request and one JSON access log line.
 *
 *   npx tsx bench/proxy/telemetry.ts [--seconds 3] [--rounds 3] [--connections 16] [--micro-only]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SidecarProxy } from '../../src/proxy/index.js';
import { createLogger } from '../../src/proxy/log.js';
import { compileFormat, LogEntry } from '../../src/proxy/telemetry/access-log.js';
import type { TelemetryOptions } from '../../src/proxy/telemetry/request-telemetry.js';
import {
  decideSampled,
  extractTrace,
  injectTrace,
  newSpanId,
  newTraceId,
} from '../../src/proxy/telemetry/tracing.js';
import { type LoadResult, loadNode, loadWrk } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const SECONDS = Number(opt('seconds', '3'));
const ROUNDS = Number(opt('rounds', '3'));
const CONNECTIONS = Number(opt('connections', '16'));
const work = mkdtempSync(join(tmpdir(), 'isthmus-bench-telemetry-'));

function hasWrk(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const wrk = hasWrk();

function startUpstream(): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'roles.ts'), 'upstream', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), child });
    });
    child.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
  });
}

async function startCollector(): Promise<{ port: number; server: http.Server; spans: () => number }> {
  let spans = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      spans += (JSON.parse(body || '[]') as unknown[]).length;
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server, spans: () => spans };
}

const CLUSTER = 'outbound|9080||upstream.bench.svc.cluster.local';

async function startProxy(upstream: number, telemetry: TelemetryOptions | undefined): Promise<SidecarProxy> {
  const p = new SidecarProxy({
    adminPort: null,
    statsPort: null,
    healthPort: null,
    listeners: { address: '127.0.0.1', ports: { bench: 0 } },
    logger: createLogger('error'),
    ...(telemetry ? { telemetry } : {}),
  });
  await p.start();
  const r = await p.applyTables({
    apiVersion: 'isthmus.io/tables/v1',
    version: 'bench',
    node: { name: 'bench', namespace: 'bench', app: 'bench', version: 'v1' },
    listeners: [{ name: 'bench', direction: 'outbound', port: 9080, protocol: 'http', routeConfig: '9080' }],
    routeConfigs: [
      {
        name: '9080',
        virtualHosts: [
          {
            name: 'u',
            domains: ['*'],
            routes: [{ forward: { clusters: [{ cluster: CLUSTER, weight: 1 }] } }],
          },
        ],
      },
    ],
    clusters: [
      {
        name: CLUSTER,
        service: { host: 'upstream.bench.svc.cluster.local', name: 'upstream', namespace: 'bench' },
      },
    ],
    endpoints: { [CLUSTER]: [{ address: '127.0.0.1', port: upstream }] },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return p;
}

interface Row extends LoadResult {
  cpuPer1k: number;
}

async function measure(port: number): Promise<Row> {
  const load = (s: number) => (wrk ? loadWrk(port, CONNECTIONS, s) : loadNode(port, CONNECTIONS, s));
  await load(1);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await load(SECONDS);
  const c = process.cpuUsage(c0);
  const requests = (r.rps * (performance.now() - t0)) / 1000;
  return { ...r, cpuPer1k: ((c.user + c.system) / 1e6 / requests) * 1000 };
}

/** ns per call of `fn` over `n` calls (after a warm-up), best of 5. */
function nsPerOp(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < n; i++) fn(i);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

function micro(): void {
  // A typical request as the handler forwards it (curl-like headers + x-request-id).
  const incoming = [
    'host',
    'reviews:9080',
    'user-agent',
    'curl/8.5.0',
    'accept',
    '*/*',
    'x-request-id',
    'f0e1',
  ];
  const withB3 = [
    ...incoming,
    'x-b3-traceid',
    'a1b2c3d4e5f60718',
    'x-b3-spanid',
    '0102030405060708',
    'x-b3-sampled',
    '0',
  ];
  const propagate = (raw: string[]) => {
    const headers = raw.slice();
    const t = extractTrace(raw);
    const sampled = decideSampled(t, 1);
    injectTrace(headers, t.traceId || newTraceId(), newSpanId(), t.parentSpan, sampled);
  };
  const copyOnly = (raw: string[]) => {
    raw.slice();
  };
  const base = nsPerOp(200_000, () => copyOnly(incoming));
  const newTrace = nsPerOp(200_000, () => propagate(incoming)) - base;
  const joined = nsPerOp(200_000, () => propagate(withB3)) - base;
  const format = compileFormat('JSON');
  const e = new LogEntry().reset();
  Object.assign(e, {
    startEpochMs: Date.now(),
    method: 'GET',
    path: '/reviews/1',
    protocol: 'HTTP/1.1',
    status: 200,
    details: 'via_upstream',
    bytesSent: 1024,
    durationMs: 1.3,
    requestHeaders: incoming,
    requestId: 'f0e1',
    authority: 'reviews:9080',
    upstreamHost: '10.0.0.7:9080',
    upstreamCluster: CLUSTER,
    downstreamLocal: '10.0.0.5:9080',
    downstreamRemote: '10.0.0.9:51234',
    routeName: 'default',
  });
  const line = nsPerOp(100_000, () => format(e));
  console.log('per-request telemetry work alone (ns, best of 5):');
  console.log(`  trace propagation, new trace (unsampled): ${newTrace.toFixed(0)} ns`);
  console.log(`  trace propagation, B3 in (unsampled):     ${joined.toFixed(0)} ns`);
  console.log(`  JSON access log line render:             ${line.toFixed(0)} ns`);
}

micro();
if (args.includes('--micro-only')) process.exit(0);

const upstream = await startUpstream();
const collector = await startCollector();
try {
  const zipkin = { address: `127.0.0.1:${collector.port}` };
  const modes: Array<[string, TelemetryOptions | undefined]> = [
    ['off', undefined],
    ['trace-1', { tracing: { sampling: 1, zipkin } }],
    ['trace-100', { tracing: { sampling: 100, zipkin } }],
    ['log-json', { accessLog: { file: join(work, 'access.log'), encoding: 'JSON' } }],
  ];
  const proxies = new Map<string, SidecarProxy>();
  for (const [name, t] of modes) proxies.set(name, await startProxy(upstream.port, t));
  const best = new Map<string, Row>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, p] of proxies) {
      const r = await measure(p.listenerPort('bench')!);
      const prev = best.get(name);
      if (!prev || r.cpuPer1k < prev.cpuPer1k) best.set(name, r);
    }
  }
  console.log(
    `telemetry cost: ${CONNECTIONS} connections, 1 KB responses, best of ${ROUNDS} x ${SECONDS}s, load: ${wrk ? 'wrk' : 'node'}`,
  );
  console.log('mode        rps      p50 ms  p99 ms  CPU ms per 1k req  vs off');
  const off = best.get('off')!;
  for (const [name, r] of best) {
    console.log(
      `${name.padEnd(10)} ${r.rps.toFixed(0).padStart(6)}   ${r.p50.toFixed(2).padStart(5)}   ${r.p99.toFixed(2).padStart(5)}   ${(r.cpuPer1k * 1000).toFixed(1).padStart(8)}          ${((r.cpuPer1k / off.cpuPer1k - 1) * 100).toFixed(1).padStart(5)}%`,
    );
  }
  for (const p of proxies.values()) await p.stop(100);
  console.log(`spans received by the collector: ${collector.spans()}`);
} finally {
  upstream.child.kill();
  collector.server.close();
  rmSync(work, { recursive: true, force: true });
}
