/**
 * Validating webhook latency on loopback: the admission server runs in a child process (as in
 * the controller), 200 concurrent clients post AdmissionReviews over keep-alive HTTPS.
 * Target (issue #2): p99 < 5 ms.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'undici';
import { createSelfSignedCa, issueLeaf } from '../src/ca/x509.js';
import { closedLoop, fmt } from './lib.js';

if (process.argv[2] === 'serve') {
  const { startAdmissionServer } = await import('../src/webhook/server.js');
  const { validateAdmission } = await import('../src/webhook/validate-handler.js');
  const { cert, key } = JSON.parse(process.env.BENCH_TLS!) as { cert: string; key: string };
  const s = await startAdmissionServer({
    port: 0,
    host: '127.0.0.1',
    cert,
    key,
    handlers: { '/validate': (r) => validateAdmission(r) },
  });
  process.send!({ port: s.port });
} else {
  const ca = createSelfSignedCa({ commonName: 'bench', validityDays: 1 });
  const leaf = issueLeaf(ca, { names: ['127.0.0.1'], validityHours: 1 });
  const child = fork(new URL(import.meta.url).pathname, ['serve'], {
    env: { ...process.env, BENCH_TLS: JSON.stringify({ cert: leaf.certPem, key: leaf.keyPem }) },
    execArgv: ['--import', 'tsx'],
  });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (m: { port: number }) => resolve(m.port)),
  );
  const review = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '0000-1111',
      kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' },
      operation: 'CREATE',
      namespace: 'shop',
      object: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews', namespace: 'shop' },
        spec: {
          hosts: ['reviews'],
          http: [
            {
              match: [{ headers: { 'end-user': { exact: 'jason' } } }],
              route: [{ destination: { host: 'reviews', subset: 'v2' } }],
            },
            {
              route: [
                { destination: { host: 'reviews', subset: 'v1' }, weight: 80 },
                { destination: { host: 'reviews', subset: 'v3' }, weight: 20 },
              ],
              timeout: '10s',
            },
          ],
        },
      },
    },
  });
  const dispatcher = new Agent({ connect: { ca: ca.certPem }, connections: 200, pipelining: 1 });
  const url = `https://127.0.0.1:${port}/validate`;
  const once = async () => {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      body: review,
      headers: { 'content-type': 'application/json' },
    });
    await res.body.text();
    return res.statusCode === 200;
  };
  await closedLoop(once, { concurrency: 200, total: 2000, maxSeconds: 20 }); // warm-up (TLS handshakes, JIT)
  const r = await closedLoop(once, { concurrency: 200, total: 20000, maxSeconds: 60 });
  console.log(
    `webhook /validate, 200 concurrent keep-alive clients: ${r.count} reviews in ${fmt(r.seconds)} s, ${fmt(r.rps, 0)}/s, errors ${r.errors}`,
  );
  console.log(
    `  latency ms: p50 ${fmt(r.p50)}  p90 ${fmt(r.p90)}  p99 ${fmt(r.p99)}  max ${fmt(r.max)}  (target p99 < 5 ms)`,
  );
  await dispatcher.close();
  child.kill();
}
