/**
 * Mesh mTLS cost, sidecars as separate processes on loopback (certificates from an in-process
 * mesh CA, handed to the children in a temp file):
 * 1. added latency of the sidecar pair (client sidecar -> server sidecar -> app) at a fixed
 *    1,000 rps over 16 keep-alive connections, plaintext pair vs mTLS pair vs direct; latency is
 *    measured from each request's scheduled send time (no coordinated omission);
 * 2. TLS handshakes per second per sidecar core, full and resumed (session tickets): fresh mTLS connections (mesh certificate,
 *    ALPN istio) to the server sidecar's inbound port in STRICT mode, divided by the CPU time
 *    the server sidecar process spent.
 *
 *   npx tsx bench/proxy/mtls.ts [--seconds 10] [--rate 1000] [--handshake-seconds 5] [--handshakes-only]
 *     [--profile-server <dir>]   (write a .cpuprofile of the STRICT server sidecar)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import type { WorkloadCertificate } from '../../src/agent/accept.js';
import { createLogger } from '../../src/proxy/log.js';
import { Sidecar } from '../../src/proxy/sidecar/index.js';
import type { ProxyTables } from '../../src/tables/index.js';
import {
  clientTables,
  issue,
  ManualCertificates,
  newCa,
  SERVICE_PORT,
  serverTables,
  to,
} from '../../test/proxy/mtls-helpers.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};

interface RoleConfig {
  cert: WorkloadCertificate;
  tables: ProxyTables;
  /** Port every captured connection was "going to". */
  dst: number;
}

/** Child: the app (1 KB responses), in its own process so the load generator does not slow it. */
async function appRole(): Promise<void> {
  const body = Buffer.alloc(1024, 'x');
  const app = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const port = (app.address() as net.AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ outbound: port, inbound: port })}\n`);
  process.stdin.on('data', (d) => {
    if (d.toString().trim() === 'exit') process.exit(0);
  });
}

/** Child: one sidecar with a static certificate; prints its ports, answers `cpu` on stdin. */
async function role(file: string): Promise<void> {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RoleConfig;
  const cert = {
    ...raw.cert,
    notBefore: new Date(raw.cert.notBefore),
    notAfter: new Date(raw.cert.notAfter),
    receivedAt: new Date(),
  };
  const sidecar = await Sidecar.start({
    logger: createLogger('error'),
    env: {},
    ports: { outbound: 0, inbound: 0, admin: null, stats: null, health: null, status: null },
    bindAddress: '127.0.0.1',
    ipv6: false,
    originalDst: () => to(raw.dst),
    certificates: new ManualCertificates(cert),
  });
  const r = await sidecar.proxy.applyTables(raw.tables);
  if (!r.ok) throw new Error(JSON.stringify(r));
  process.stdout.write(
    `${JSON.stringify({ outbound: sidecar.outboundPort, inbound: sidecar.inboundPort })}\n`,
  );
  process.stdin.on('data', (d) => {
    const cmd = d.toString().trim();
    if (cmd === 'cpu') {
      const u = process.cpuUsage();
      const stats = sidecar.proxy.inboundTls?.stats;
      process.stdout.write(
        `${JSON.stringify({ cpuMs: (u.user + u.system) / 1000, terminated: stats?.terminated ?? 0, resumed: stats?.resumed ?? 0 })}\n`,
      );
    } else if (cmd === 'exit') process.exit(0);
  });
}

interface Child {
  proc: ChildProcess;
  ports: { outbound: number; inbound: number };
  ask(cmd: string): Promise<{ cpuMs: number; terminated: number; resumed: number }>;
}

async function startChild(
  dir: string,
  name: string,
  cfg: RoleConfig | null,
  execArgs: string[] = [],
): Promise<Child> {
  const file = join(dir, `${name}.json`);
  if (cfg !== null) writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
  const role = cfg === null ? ['--app'] : ['--role', file];
  const proc = spawn(
    process.execPath,
    [...execArgs, '--import', 'tsx', fileURLToPath(import.meta.url), ...role],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines: Array<(l: string) => void> = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.shift()?.(line);
      i = buf.indexOf('\n');
    }
  });
  const next = () => new Promise<string>((resolve) => lines.push(resolve));
  const ports = JSON.parse(await next()) as Child['ports'];
  return {
    proc,
    ports,
    ask: async (cmd) => {
      const p = next();
      proc.stdin!.write(`${cmd}\n`);
      return JSON.parse(await p) as { cpuMs: number; terminated: number; resumed: number };
    },
  };
}

interface Latency {
  p50: number;
  p90: number;
  p99: number;
  done: number;
  errors: number;
}

/** Open-loop load: `rate` requests/s spread over `connections` keep-alive connections. */
async function fixedRate(port: number, rate: number, seconds: number, connections = 16): Promise<Latency> {
  const clients = Array.from(
    { length: connections },
    () => new Client(`http://127.0.0.1:${port}`, { pipelining: 1 }),
  );
  const total = Math.round(rate * seconds);
  const lat = new Float64Array(total);
  let done = 0;
  let errors = 0;
  const start = performance.now();
  const interval = 1000 / rate;
  await new Promise<void>((resolve) => {
    let sent = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduled = start + sent * interval;
        const c = clients[sent % connections]!;
        sent++;
        c.request({ path: '/', method: 'GET', headers: { host: 'reviews:9080' } }).then(
          async (res) => {
            await res.body.dump();
            if (res.statusCode !== 200) errors++;
            lat[done++] = performance.now() - scheduled;
            if (done + errors >= total) resolve();
          },
          () => {
            errors++;
            if (done + errors >= total) resolve();
          },
        );
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(clients.map((c) => c.close()));
  const sorted = lat.subarray(0, done).sort();
  const q = (p: number) => sorted[Math.min(done - 1, Math.floor(p * done))] ?? Number.NaN;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), done, errors };
}

/** Fresh mTLS connections as fast as `concurrency` allows for `seconds`; returns handshakes done. */
async function handshakes(
  port: number,
  cert: WorkloadCertificate,
  seconds: number,
  resume = false,
  concurrency = 8,
): Promise<number> {
  let session: Buffer | undefined;
  const ctx = tls.createSecureContext({ key: cert.keyPem, cert: cert.certChainPem, ca: cert.rootPem });
  const until = performance.now() + seconds * 1000;
  let n = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = tls.connect({
        port,
        host: '127.0.0.1',
        secureContext: ctx,
        servername: 'outbound_.9080_._.reviews.shop.svc.cluster.local',
        ALPNProtocols: ['istio-peer-exchange', 'istio'],
        checkServerIdentity: () => undefined,
        ...(resume && session ? { session } : {}),
      });
      if (resume) s.on('session', (b: Buffer) => (session = b));
      // One small request per connection, so the server side completes its handshake too
      // (TLS 1.3: the client is done before the server has checked the client certificate).
      // Not half-closed: like Envoy, the sidecar treats a downstream FIN as the client going
      // away and aborts the request upstream. `connection: close` makes the sidecar close
      // after the response.
      s.on('secureConnect', () =>
        s.write('GET / HTTP/1.1\r\nhost: reviews:9080\r\nconnection: close\r\n\r\n'),
      );
      let head = '';
      s.on('data', (d: Buffer) => {
        if (head.length < 12) head += d.toString('latin1', 0, 12);
      });
      s.on('end', () => {
        if (head.startsWith('HTTP/1.1 200')) n++;
        s.end();
        resolve();
      });
      s.on('error', () => resolve());
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) await one();
    }),
  );
  return n;
}

async function main(): Promise<void> {
  const seconds = Number(opt('seconds', '10'));
  const rate = Number(opt('rate', '1000'));
  const hsSeconds = Number(opt('handshake-seconds', '5'));
  const rounds = Number(opt('rounds', '2'));
  const handshakesOnly = args.includes('--handshakes-only');
  const ca = newCa();
  const dir = mkdtempSync(join(tmpdir(), 'isthmus-mtls-bench-'));
  const children: Child[] = [];
  try {
    const app = await startChild(dir, 'app', null);
    children.push(app);
    const appPort = app.ports.inbound;
    const serverCert = await issue(ca, 'shop', 'reviews');
    const clientCert = await issue(ca, 'shop', 'productpage');
    const server = await startChild(dir, 'server', {
      cert: serverCert,
      tables: serverTables(appPort, { mode: 'PERMISSIVE' }),
      dst: appPort,
    });
    children.push(server);
    const mtlsClient = await startChild(dir, 'client-mtls', {
      cert: clientCert,
      tables: clientTables(server.ports.inbound),
      dst: SERVICE_PORT,
    });
    const plainClient = await startChild(dir, 'client-plain', {
      cert: clientCert,
      tables: clientTables(server.ports.inbound, { tls: null }),
      dst: SERVICE_PORT,
    });
    children.push(mtlsClient, plainClient);

    if (!handshakesOnly) await latencies();
    async function latencies() {
      console.log(
        `fixed ${rate} rps, 16 connections, 1 KB responses, ${seconds} s per mode (after a 2 s warm-up), ` +
          `best of ${rounds} interleaved rounds`,
      );
      const modes: Array<[string, number]> = [
        ['direct (no sidecars)', appPort],
        ['sidecar pair, plaintext', plainClient.ports.outbound],
        ['sidecar pair, mTLS', mtlsClient.ports.outbound],
      ];
      const results = new Map<string, Latency>();
      for (let round = 0; round < rounds; round++)
        for (const [name, port] of modes) {
          await fixedRate(port, rate, 2);
          const r = await fixedRate(port, rate, seconds);
          const best = results.get(name);
          if (best === undefined || r.p90 + r.p99 < best.p90 + best.p99) results.set(name, r);
        }
      for (const [name] of modes) {
        const r = results.get(name)!;
        console.log(
          `${name.padEnd(26)} p50 ${r.p50.toFixed(2)} ms  p90 ${r.p90.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.done} ok, ${r.errors} errors)`,
        );
      }
      const direct = results.get(modes[0]![0])!;
      for (const [name] of modes.slice(1)) {
        const r = results.get(name)!;
        console.log(
          `added by ${name}: p90 +${(r.p90 - direct.p90).toFixed(2)} ms, p99 +${(r.p99 - direct.p99).toFixed(2)} ms`,
        );
      }
    }

    // Handshakes: the server sidecar in STRICT mode terminates fresh connections.
    const profDir = opt('profile-server', '');
    const strictServer = await startChild(
      dir,
      'server-strict',
      { cert: serverCert, tables: serverTables(appPort, { mode: 'STRICT' }), dst: appPort },
      profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
    );
    children.push(strictServer);
    for (const resume of [false, true]) {
      await handshakes(strictServer.ports.inbound, clientCert, 1, resume);
      const before = await strictServer.ask('cpu');
      const t0 = performance.now();
      const n = await handshakes(strictServer.ports.inbound, clientCert, hsSeconds, resume);
      const wall = (performance.now() - t0) / 1000;
      const after = await strictServer.ask('cpu');
      const cpuS = (after.cpuMs - before.cpuMs) / 1000;
      const done = after.terminated - before.terminated;
      const resumed = after.resumed - before.resumed;
      console.log(
        `${resume ? 'resumed (session tickets)' : 'full handshakes'}, EC P-256 certificates, TLS 1.3, ` +
          `each connection carrying one request: ${done} terminated (${resumed} resumed) in ${wall.toFixed(1)} s ` +
          `(${(done / wall).toFixed(0)}/s wall, client-bound on this machine); server sidecar CPU ${cpuS.toFixed(2)} s -> ` +
          `${(done / cpuS).toFixed(0)} connections/s per sidecar core (${((cpuS * 1000) / done).toFixed(2)} ms CPU each; ` +
          `client saw ${n} answered 200)`,
      );
    }
  } finally {
    // A clean exit (not a signal) so children run with --cpu-prof write their profiles.
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            const t = setTimeout(() => {
              c.proc.kill();
              resolve();
            }, 10_000);
            c.proc.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.proc.stdin!.write('exit\n');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

const roleAt = args.indexOf('--role');
if (roleAt >= 0) await role(args[roleAt + 1]!);
else if (args.includes('--app')) await appRole();
else await main();
