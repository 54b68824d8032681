/**
 * Mesh CA and agent certificate benchmarks (bounded counts and times):
 *  1. in-process signing: MeshCa.signWorkload (parse + verify the CSR, build + sign the leaf);
 *  2. the HTTPS endpoint end to end (`POST /v1/certificates`, CA in its own process, TokenReview
 *     faked and cached as in production after the first call), with the CA's CPU per signing;
 *  3. agent-side key generation + CSR, EC P-256 vs RSA-2048;
 *  4. full mutual-TLS handshakes per second against a TLS server (own process) using an issued
 *     workload certificate, and the server's CPU per handshake -> handshakes per server core.
 * Every key here is generated for the run and discarded.
 */
import { fork } from 'node:child_process';
import { connect, createSecureContext } from 'node:tls';
import { Agent, request } from 'undici';
import { MeshCa } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { createCsr, generateWorkloadKey, type WorkloadKeyType } from '../../src/ca/csr.js';
import { closedLoop, fmt, type LoadResult } from '../lib.js';

const SA = { namespace: 'bench', serviceAccount: 'client' };
const line = (name: string, r: LoadResult) =>
  console.log(
    `${name.padEnd(48)} ${String(r.count).padStart(6)} in ${fmt(r.seconds)} s  ${fmt(r.rps, 0).padStart(6)}/s  errors ${r.errors}  p50 ${fmt(r.p50)}  p99 ${fmt(r.p99)} ms`,
  );

function child(mode: 'ca' | 'tls', env: Record<string, string>) {
  const proc = fork(new URL('./child.ts', import.meta.url).pathname, [mode], {
    env: { ...process.env, ...env },
    execArgv: ['--import', 'tsx'],
  });
  const ready = new Promise<{ port: number; rootPem?: string }>((resolve) =>
    proc.once('message', (m: { port: number; rootPem?: string }) => resolve(m)),
  );
  const cpuMs = () =>
    new Promise<number>((resolve) => {
      proc.once('message', (m: { cpuMs: number }) => resolve(m.cpuMs));
      proc.send('cpu');
    });
  return { proc, ready, cpuMs };
}

async function inProcessSigning(ca: MeshCa, keyType: WorkloadKeyType, n: number): Promise<void> {
  const csrs = await Promise.all(
    Array.from({ length: 50 }, async () => createCsr(await generateWorkloadKey(keyType))),
  );
  let i = 0;
  const once = async () => {
    ca.signWorkload(csrs[i++ % csrs.length]!, SA);
    return true;
  };
  await closedLoop(once, { concurrency: 1, total: 300, maxSeconds: 2 }); // warm-up (JIT)
  const r = await closedLoop(once, { concurrency: 1, total: n, maxSeconds: 5 });
  line(`sign in-process (${keyType} CSR, RSA-2048 CA)`, r);
}

async function keygenAndCsr(keyType: WorkloadKeyType, n: number): Promise<void> {
  const r = await closedLoop(
    async () => {
      createCsr(await generateWorkloadKey(keyType));
      return true;
    },
    { concurrency: 1, total: n, maxSeconds: 5 },
  );
  line(`agent keygen + CSR (${keyType})`, r);
}

async function httpsSigning(): Promise<void> {
  const ca = child('ca', {});
  const { port, rootPem } = await ca.ready;
  const token = `${Buffer.from('{}').toString('base64url')}.${Buffer.from(
    JSON.stringify({
      aud: 'istio-ca',
      sub: 'system:serviceaccount:bench:client',
      exp: Math.floor(Date.now() / 1000) + 3600,
    }),
  ).toString('base64url')}.sig`;
  const csrs = await Promise.all(
    Array.from({ length: 50 }, async () => createCsr(await generateWorkloadKey())),
  );
  const dispatcher = new Agent({ connect: { ca: rootPem!, servername: 'localhost' }, connections: 16 });
  let i = 0;
  const once = async () => {
    const res = await request(`https://127.0.0.1:${port}/v1/certificates`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ csr: csrs[i++ % csrs.length] }),
    });
    await res.body.text();
    return res.statusCode === 200;
  };
  await closedLoop(once, { concurrency: 16, total: 200, maxSeconds: 5 }); // warm-up
  const cpu0 = await ca.cpuMs();
  const r = await closedLoop(once, { concurrency: 16, total: 4000, maxSeconds: 10 });
  const cpu = (await ca.cpuMs()) - cpu0;
  line('POST /v1/certificates (16 conns, EC CSR)', r);
  console.log(
    `${''.padEnd(48)} CA CPU ${fmt(cpu / r.count, 3)} ms per signing -> ~${fmt((r.count / cpu) * 1000, 0)} signings per CA core-second`,
  );
  await dispatcher.close();
  ca.proc.kill();
}

async function handshakes(ca: MeshCa, keyType: WorkloadKeyType): Promise<void> {
  const issue = async () => {
    const key = await generateWorkloadKey(keyType);
    const signed = ca.signWorkload(createCsr(key), SA);
    return { cert: signed.certChain.join(''), key: key.export({ type: 'pkcs8', format: 'pem' }).toString() };
  };
  const server = await issue();
  const client = await issue();
  const tls = child('tls', { BENCH_TLS: JSON.stringify({ ...server, ca: ca.rootCertPem }) });
  const { port } = await tls.ready;
  // One context for all connections, as the proxy will hold one per certificate: passing
  // cert/key/ca to every connect() re-parses them and costs more than the handshake.
  const secureContext = createSecureContext({ cert: client.cert, key: client.key, ca: ca.rootCertPem });
  const once = () =>
    new Promise<boolean>((resolve) => {
      // No session passed: every connection is a full handshake (TLS 1.3, mutual).
      const s = connect({ host: '127.0.0.1', port, secureContext, checkServerIdentity: () => undefined });
      s.once('secureConnect', () => {
        resolve(s.authorized);
        s.destroy();
      });
      s.once('error', () => resolve(false));
    });
  await closedLoop(once, { concurrency: 8, total: 200, maxSeconds: 5 });
  const cpu0 = await tls.cpuMs();
  const r = await closedLoop(once, { concurrency: 8, total: 5000, maxSeconds: 10 });
  const cpu = (await tls.cpuMs()) - cpu0;
  line(`mTLS full handshakes (${keyType} certs, 8 conc.)`, r);
  console.log(
    `${''.padEnd(48)} server CPU ${fmt(cpu / r.count, 3)} ms per handshake -> ~${fmt((r.count / cpu) * 1000, 0)} handshakes per server core-second`,
  );
  tls.proc.kill();
}

const ca = new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
  trustDomain: 'cluster.local',
});
await inProcessSigning(ca, 'ec-p256', 3000);
await inProcessSigning(ca, 'rsa-2048', 3000);
await keygenAndCsr('ec-p256', 3000);
await keygenAndCsr('rsa-2048', 200);
await httpsSigning();
await handshakes(ca, 'ec-p256');
await handshakes(ca, 'rsa-2048');
