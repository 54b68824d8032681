/**
 * Proxy throughput/latency on loopback: 16 keep-alive connections, 1 KB responses.
 * Modes: direct (no proxy), isthmus (one sidecar), pair (client sidecar -> server sidecar ->
 * app), a plain node:http + keep-alive Agent proxy, an undici Pool proxy, haproxy and nginx
 * (each skipped with a note when not installed). The proxies under test are pinned to CPU 0
 * (taskset) and the load generator and upstream to CPU 1 when taskset and 2+ CPUs exist.
 *
 * The sidecars run as the deployed `isthmus proxy --config` process from a compiled build
 * (`tsc -p tsconfig.build.json` into node_modules/.cache/isthmus-bench), with the V8 flags the
 * sidecar template sets, so RSS is the sidecar's own (no tsx loader in it).
 *
 * Three phases:
 * 1. saturation: closed loop (`wrk` when installed, else a bounded Node generator), best of N
 *    interleaved rounds per mode: rps, latency, CPU per 1,000 rps, peak RSS;
 * 2. fixed rate (direct, isthmus, pair): an open-loop Node generator at --rate requests/s
 *    (latency from each request's due time): p50/p90/p99 over direct, CPU and peak RSS at
 *    that rate;
 * 3. TCP: 1 KB ping-pong through a plain TCP listener vs a direct echo (Node generator).
 *
 *   npx tsx bench/proxy/run.ts [--seconds 5] [--rounds 3] [--connections 16]
 *     [--modes direct,isthmus,pair,node-proxy,undici-proxy,haproxy,nginx]
 *     [--rate 1000] [--rate-seconds 10] [--tcp on|off] [--node-flags "<V8 flags of the sidecar>"]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LoadResult, loadEcho, loadNode, loadRate, loadWrk } from './load.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const SECONDS = Number(opt('seconds', '5'));
const CONNECTIONS = Number(opt('connections', '16'));
const MODES = opt('modes', 'direct,isthmus,pair,node-proxy,undici-proxy,haproxy,nginx').split(',');
const ROUNDS = Number(opt('rounds', '3'));
const RATE = Number(opt('rate', '1000'));
const RATE_SECONDS = Number(opt('rate-seconds', '10'));
const TCP = opt('tcp', 'on') !== 'off';
/** The V8 flags webhooks/sidecar-template.yaml gives the sidecar (its NODE_OPTIONS env). */
const SIDECAR_NODE_FLAGS =
  /- name: NODE_OPTIONS\s+value: (.+)/.exec(
    readFileSync(join(root, 'webhooks', 'sidecar-template.yaml'), 'utf8'),
  )?.[1] ?? '';
const NODE_FLAGS = opt('node-flags', SIDECAR_NODE_FLAGS).split(' ').filter(Boolean);

/** Path of an installed command (PATH, then /usr/sbin where haproxy and nginx live), or undefined. */
function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd} || command -v /usr/sbin/${cmd}`], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return undefined;
  }
}
const has = (cmd: string) => which(cmd) !== undefined;
const pin = has('taskset') && availableParallelism() >= 2;
const wrk = has('wrk');
const children: ChildProcess[] = [];
const work = mkdtempSync(join(tmpdir(), 'isthmus-bench-proxy-'));

/** utime+stime of a process in seconds (Linux /proc), or NaN elsewhere. */
function cpuSeconds(pid: number): number {
  if (!existsSync(`/proc/${pid}/stat`)) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

function rssMb(pid: number): number {
  if (!existsSync(`/proc/${pid}/status`)) return Number.NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on the port (the process may log nothing). */
async function listening(port: number, what: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} in 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function spawnPinned(cpu: number, cmd: string, argv: string[]): ChildProcess {
  const child = spawn(pin ? 'taskset' : cmd, pin ? ['-c', String(cpu), cmd, ...argv] : argv, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

/** A role of roles.ts (upstream, node-proxy, undici-proxy); resolves with its port and pid. */
function startRole(role: string, cpu: number, ...rest: string[]): Promise<Server> {
  const child = spawnPinned(cpu, process.execPath, [
    '--import',
    'tsx',
    join(here, 'roles.ts'),
    role,
    '0',
    ...rest,
  ]);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), pids: [child.pid!] });
    });
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
    setTimeout(() => reject(new Error(`${role} did not start in 20 s`)), 20_000).unref();
  });
}

interface Server {
  port: number;
  /** The proxy processes whose CPU and RSS are reported (two for the sidecar pair). */
  pids: number[];
}

/** Compiles src/ once into node_modules/.cache (outside dist/, which bin/isthmus.js would pick up). */
function buildCli(): string {
  const out = join(root, 'node_modules', '.cache', 'isthmus-bench');
  mkdirSync(out, { recursive: true });
  // Under node_modules Node does not see the project's "type": "module".
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  try {
    execFileSync(
      join(root, 'node_modules', '.bin', 'tsc'),
      ['-p', 'tsconfig.build.json', '--outDir', join(out, 'dist')],
      {
        cwd: root,
        stdio: 'pipe',
      },
    );
  } catch (err) {
    // Type errors elsewhere still emit JavaScript; only a missing entry is fatal.
    if (!existsSync(join(out, 'dist', 'cli', 'main.js'))) throw err;
  }
  return join(out, 'dist', 'cli', 'main.js');
}

const CLUSTER = 'outbound|9080||upstream.bench.svc.cluster.local';

/** Compiled tables: one listener (HTTP, or plain TCP) forwarding everything to one endpoint. */
function tables(direction: 'outbound' | 'inbound', endpointPort: number, tcp = false): object {
  const cluster = direction === 'outbound' ? CLUSTER : 'inbound|9080||';
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: 'bench',
    node: { name: `bench-${direction}`, namespace: 'bench', app: 'bench', version: 'v1' },
    listeners: [
      tcp
        ? { name: 'bench', direction, port: 9080, protocol: 'tcp', cluster }
        : { name: 'bench', direction, port: 9080, protocol: 'http', routeConfig: '9080' },
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
      direction === 'outbound'
        ? {
            name: cluster,
            service: { host: 'upstream.bench.svc.cluster.local', name: 'upstream', namespace: 'bench' },
          }
        : { name: cluster },
    ],
    endpoints: { [cluster]: [{ address: '127.0.0.1', port: endpointPort }] },
  };
}

async function startSidecar(
  cli: string,
  direction: 'outbound' | 'inbound',
  upstream: number,
  tcp = false,
): Promise<Server> {
  const port = await freePort();
  const file = join(work, `${direction}-${port}.json`);
  writeFileSync(file, JSON.stringify(tables(direction, upstream, tcp)));
  // Admin, stats and health listen as in a pod (ephemeral ports: several sidecars run here).
  const child = spawnPinned(0, process.execPath, [
    ...NODE_FLAGS,
    cli,
    'proxy',
    '--config',
    file,
    '--admin-port',
    '0',
    '--stats-port',
    '0',
    '--health-port',
    '0',
    '--bind-address',
    '127.0.0.1',
    '--listener-port',
    `bench=${port}`,
    '--log-level',
    'error',
  ]);
  await listening(port, `isthmus ${direction}`, child);
  return { port, pids: [child.pid!] };
}

async function startHaproxy(upstream: number): Promise<Server> {
  const port = await freePort();
  const cfg = join(work, 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream
backend upstream
  http-reuse always
  server app 127.0.0.1:${upstream} maxconn 64
`,
  );
  const child = spawnPinned(0, which('haproxy')!, ['-db', '-f', cfg]);
  await listening(port, 'haproxy', child);
  return { port, pids: [child.pid!] };
}

async function startNginx(upstream: number): Promise<Server> {
  const port = await freePort();
  const dir = join(work, 'nginx');
  mkdirSync(dir, { recursive: true });
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `${t}_temp_path ${join(dir, t)};`)
    .join(' ');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} error;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp}
  upstream app { server 127.0.0.1:${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const child = spawnPinned(0, which('nginx')!, [
    '-p',
    dir,
    '-e',
    join(dir, 'error.log'),
    '-c',
    join(dir, 'nginx.conf'),
  ]);
  await listening(port, 'nginx', child);
  return { port, pids: [child.pid!] };
}

interface Measured extends LoadResult {
  /** CPU seconds the proxy processes used per 1,000 requests = cores per 1,000 rps. */
  cpuPer1k: number;
  /** Peak RSS of the proxy process(es) during the run (the largest one for the pair). */
  rss: number;
}

/** Runs `load`, sampling the proxy processes' CPU before/after and RSS every 100 ms. */
async function withUsage(server: Server, run: () => Promise<LoadResult>): Promise<Measured> {
  const cpu0 = server.pids.reduce((s, p) => s + cpuSeconds(p), 0);
  let rss = Number.NaN;
  const sample = () => {
    for (const p of server.pids) {
      const r = rssMb(p);
      if (!(r <= rss)) rss = r;
    }
  };
  const timer = setInterval(sample, 100);
  const t0 = performance.now();
  const r = await run().finally(() => clearInterval(timer));
  sample();
  const requests = (r.rps * (performance.now() - t0)) / 1000;
  const cpu = server.pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
  return {
    ...r,
    cpuPer1k: server.pids.length ? (cpu / requests) * 1000 : Number.NaN,
    rss: server.pids.length ? rss : Number.NaN,
  };
}

async function saturate(server: Server): Promise<Measured> {
  const load = (seconds: number) =>
    wrk
      ? loadWrk(server.port, CONNECTIONS, seconds, pin ? 1 : undefined)
      : loadNode(server.port, CONNECTIONS, seconds);
  await load(Math.min(1, SECONDS));
  return withUsage(server, () => load(SECONDS));
}

async function fixedRate(server: Server): Promise<Measured> {
  await loadRate(server.port, CONNECTIONS, RATE, 1);
  return withUsage(server, () => loadRate(server.port, CONNECTIONS, RATE, RATE_SECONDS));
}

const num = (v: number, digits: number, width: number) =>
  (Number.isNaN(v) ? '-' : v.toFixed(digits)).padStart(width);

function table(title: string, rows: Array<[string, Measured]>): void {
  console.log(`\n${title}`);
  console.log('mode            rps        p50 ms   p90 ms   p99 ms   cores per 1k rps   peak RSS MB');
  for (const [mode, r] of rows) {
    console.log(
      `${mode.padEnd(14)} ${num(r.rps, 0, 8)}   ${num(r.p50, 2, 6)}   ${num(r.p90, 2, 6)}   ${num(r.p99, 2, 6)}   ${num(r.cpuPer1k, 3, 9)}          ${num(r.rss, 0, 6)}${r.errors ? `   errors ${r.errors}` : ''}`,
    );
  }
}

try {
  const load0 = loadavg()[0]!;
  const upstream = (await startRole('upstream', 1)).port;
  const cli = MODES.some((m) => m === 'isthmus' || m === 'pair') ? buildCli() : '';
  const servers = new Map<string, Server>();
  for (const mode of MODES) {
    if ((mode === 'haproxy' || mode === 'nginx') && !has(mode)) {
      console.log(
        `note: ${mode} is not installed: its row is skipped (apt-get install ${mode === 'nginx' ? 'nginx-light' : mode})`,
      );
      continue;
    }
    if (mode === 'direct') servers.set(mode, { port: upstream, pids: [] });
    else if (mode === 'isthmus') servers.set(mode, await startSidecar(cli, 'outbound', upstream));
    else if (mode === 'pair') {
      const inbound = await startSidecar(cli, 'inbound', upstream);
      const outbound = await startSidecar(cli, 'outbound', inbound.port);
      servers.set(mode, { port: outbound.port, pids: [...outbound.pids, ...inbound.pids] });
    } else if (mode === 'haproxy') servers.set(mode, await startHaproxy(upstream));
    else if (mode === 'nginx') servers.set(mode, await startNginx(upstream));
    else servers.set(mode, await startRole(mode, 0, String(upstream)));
  }
  const idle = [...servers]
    .filter(([, s]) => s.pids.length)
    .map(([m, s]) => `${m} ${s.pids.map((p) => rssMb(p).toFixed(0)).join('+')}`);
  console.log(`idle RSS MB: ${idle.join(', ')}`);
  console.log(`sidecar node flags: ${NODE_FLAGS.join(' ') || '(none)'}`);

  // Modes are interleaved over rounds and the best round kept, so a neighbour's burst of CPU
  // use (other builds share this machine) hurts one round of one mode, not a whole mode.
  const best = new Map<string, Measured>();
  const bestRate = new Map<string, Measured>();
  const rated = ['direct', 'isthmus', 'pair'].filter((m) => servers.has(m));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [mode, server] of servers) {
      const r = await saturate(server);
      const prev = best.get(mode);
      if (!prev || r.rps > prev.rps) best.set(mode, r);
    }
    for (const mode of rated) {
      const r = await fixedRate(servers.get(mode)!);
      const prev = bestRate.get(mode);
      if (!prev || r.p90 + r.p99 < prev.p90 + prev.p99) bestRate.set(mode, r);
    }
  }
  const rows = [...best];
  const load = wrk ? 'wrk' : 'node generator (same core as upstream)';
  table(
    `saturation: ${CONNECTIONS} connections, 1 KB responses, best of ${ROUNDS} rounds x ${SECONDS}s, load: ${load}, pinned: ${pin}`,
    rows,
  );
  // The rps ratio is capped by the rig (wrk and the upstream share one core); the CPU each
  // proxy spends per request is not, so both ratios are printed.
  const ratio = (other: string, target: string) => {
    const a = best.get('isthmus');
    const b = best.get(other);
    if (!a || !b) return;
    console.log(
      `isthmus / ${other}: ${(a.rps / b.rps).toFixed(2)}x rps, ${(b.cpuPer1k / a.cpuPer1k).toFixed(2)}x requests per CPU-second${target}`,
    );
  };
  const node = best.get('node-proxy')?.rps ?? 0;
  const undici = best.get('undici-proxy')?.rps ?? 0;
  if (node || undici)
    ratio(undici >= node ? 'undici-proxy' : 'node-proxy', ' (faster Node baseline; target >= 1.5x)');
  ratio('haproxy', ' (target >= 0.35x)');
  ratio('nginx', '');

  table(
    `fixed rate: ${RATE} rps open loop over ${CONNECTIONS} connections, best of ${ROUNDS} x ${RATE_SECONDS}s (pair: CPU of both sidecars, RSS of the larger)`,
    [...bestRate],
  );
  const direct = bestRate.get('direct');
  for (const mode of ['isthmus', 'pair']) {
    const r = bestRate.get(mode);
    if (direct && r)
      console.log(
        `${mode} added latency over direct: p50 +${(r.p50 - direct.p50).toFixed(2)} ms, p90 +${(r.p90 - direct.p90).toFixed(2)} ms, p99 +${(r.p99 - direct.p99).toFixed(2)} ms${mode === 'pair' ? ' (target p90 <= 1.5, p99 <= 2.5)' : ''}`,
      );
  }
  // TCP: ping-pong of 1 KB over 16 connections through a plain TCP listener vs direct.
  if (TCP) {
    const echo = (await startRole('echo', 1)).port;
    const tcpServers: Array<[string, Server]> = [
      ['direct', { port: echo, pids: [] }],
      ['isthmus tcp', await startSidecar(cli || buildCli(), 'outbound', echo, true)],
    ];
    const bestTcp = new Map<string, Measured>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, server] of tcpServers) {
        await loadEcho(server.port, CONNECTIONS, Math.min(1, SECONDS));
        const r = await withUsage(server, () => loadEcho(server.port, CONNECTIONS, SECONDS));
        const prev = bestTcp.get(mode);
        if (!prev || r.rps > prev.rps) bestTcp.set(mode, r);
      }
    }
    table(
      `TCP echo: ${CONNECTIONS} connections, 1 KB ping-pong (rps = round trips/s), Node generator, best of ${ROUNDS} x ${SECONDS}s`,
      [...bestTcp],
    );
  }
  console.log(
    `load average: ${load0.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end (2 cores shared)`,
  );
} finally {
  for (const c of children) c.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
