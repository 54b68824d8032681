/**
 * Admission webhook latency on loopback: the admission server runs in its own process (as in
 * the controller) with both handlers; clients post AdmissionReviews over keep-alive HTTPS.
 * Targets: /validate p99 < 5 ms with 200 concurrent reviews (issue #2); /inject p99 < 5 ms per
 * pod (issue #3). Reported two ways: a closed loop of 200 concurrent clients (latency includes
 * queueing behind the other 199) and an open loop at a fixed rate over 200 connections.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'undici';
import { createSelfSignedCa, issueLeaf } from '../src/ca/x509.js';
import { closedLoop, fmt, type LoadResult, openLoop } from './lib.js';

const POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'reviews-v1-7f9c-', labels: { app: 'reviews', version: 'v1' } },
  spec: {
    serviceAccountName: 'bookinfo-reviews',
    containers: [
      {
        name: 'reviews',
        image: 'docker.io/istio/examples-bookinfo-reviews-v1:1.20.1',
        ports: [{ containerPort: 9080 }],
        readinessProbe: { httpGet: { path: '/health', port: 9080 } },
      },
    ],
  },
};

const VS = {
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
};

const review = (kind: { group: string; version: string; kind: string }, object: unknown) =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: '0000-1111', kind, operation: 'CREATE', namespace: 'shop', object },
  });

if (process.argv[2] === 'serve') {
  const { startAdmissionServer } = await import('../src/webhook/server.js');
  const { validateAdmission } = await import('../src/webhook/validate-handler.js');
  const { defaultInjectContext, injectAdmission } = await import('../src/inject/index.js');
  const ctx = defaultInjectContext({ clusterVersion: 'v1.20.2' });
  const { cert, key } = JSON.parse(process.env.BENCH_TLS!) as { cert: string; key: string };
  const s = await startAdmissionServer({
    port: 0,
    host: '127.0.0.1',
    cert,
    key,
    handlers: {
      '/validate': (r) => validateAdmission(r),
      '/inject': (r) =>
        injectAdmission(r.object as never, undefined, ctx, { namespace: r.namespace ?? 'default' }),
    },
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
  const dispatcher = new Agent({ connect: { ca: ca.certPem }, connections: 200, pipelining: 1 });
  const line = (name: string, r: LoadResult) =>
    console.log(
      `${name.padEnd(44)} ${String(r.count).padStart(6)} in ${fmt(r.seconds)} s (${fmt(r.rps, 0)}/s, errors ${r.errors})  p50 ${fmt(r.p50)}  p90 ${fmt(r.p90)}  p99 ${fmt(r.p99)}  max ${fmt(r.max)} ms`,
    );
  for (const [path, body, check] of [
    [
      '/validate',
      review({ group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' }, VS),
      '"allowed":true',
    ],
    ['/inject', review({ group: '', version: 'v1', kind: 'Pod' }, POD), '"patchType":"JSONPatch"'],
  ] as const) {
    const url = `https://127.0.0.1:${port}${path}`;
    const once = async () => {
      const res = await request(url, {
        method: 'POST',
        dispatcher,
        body,
        headers: { 'content-type': 'application/json' },
      });
      const text = await res.body.text();
      return res.statusCode === 200 && text.includes(check);
    };
    await closedLoop(once, { concurrency: 200, total: 2000, maxSeconds: 20 }); // warm-up: TLS handshakes, JIT
    line(
      `${path} closed loop, 200 concurrent`,
      await closedLoop(once, { concurrency: 200, total: 20000, maxSeconds: 60 }),
    );
    for (const rps of [500, 1000])
      line(`${path} open loop, ${rps}/s`, await openLoop(once, { rps, total: rps * 10, maxSeconds: 15 }));
  }
  console.log('(latency in ms; targets: p99 < 5 ms)');
  await dispatcher.close();
  child.kill();
}
