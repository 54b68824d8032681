/**
 * Convergence against the real apiserver (envtest): `kubectl apply` of a VirtualService
 * returning -> every affected agent having applied the new tables. 50 agents in-process, each
 * with its own service-account token and only the per-namespace Role, each validating what
 * it receives (validateTables/validateEndpoints, as the proxy does). The controller runs as a
 * separate process so its RSS is its own.
 *   npx tsx bench/convergence/run.ts [--agents 50] [--rounds 20]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { type ConfigWatcher, startConfigWatcher } from '../../src/agent/config/index.js';
import { endpointSliceVersion } from '../../src/config-source/kubernetes-discovery.js';
import { restFromKubeConfig } from '../../src/config-source/kubernetes-rest.js';
import { validateEndpoints, validateTables } from '../../src/tables/index.js';
import { PROJECT_ROOT } from '../../src/util/paths.js';
import {
  endpointSlice,
  pod,
  prepareCluster,
  service,
  serviceAccountToken,
  upsert,
  waitFor,
  waitForServiceAccount,
} from '../../test/controller/helpers.js';
import { startControlPlane } from '../../test/envtest/index.js';

const { values } = parseArgs({
  options: { agents: { type: 'string', default: '50' }, rounds: { type: 'string', default: '20' } },
});
const AGENTS = Number(values.agents);
const ROUNDS = Number(values.rounds);
const NS = 'bench';
const CLASSES = 10;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const cp = await startControlPlane();
try {
  await prepareCluster(cp);
  const admin = restFromKubeConfig(cp.kubeConfig);
  for (const name of [NS, 'istio-system'])
    await upsert(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await waitForServiceAccount(admin, NS, 'default');
  const slices = await endpointSliceVersion(admin);
  await upsert(admin, service(NS, 'reviews'));
  for (const v of ['v1', 'v2']) {
    await upsert(admin, pod(NS, `reviews-${v}`, { app: 'reviews', version: v }));
    await upsert(
      admin,
      endpointSlice(slices, NS, `reviews-${v}`, 'reviews', [
        { address: '10.0.0.1', port: 9080, pod: `reviews-${v}` },
      ]),
    );
  }
  await upsert(admin, {
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: NS },
    spec: { host: 'reviews', subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) },
  });
  for (let i = 0; i < AGENTS; i++)
    await upsert(admin, pod(NS, `client-${i}`, { app: `client-${i % CLASSES}` }));

  const controller = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'bench/convergence/controller.ts'),
      cp.server,
      cp.token,
      join(cp.dir, 'ca.crt'),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let lastMem: { rss: number; heapUsed: number; classes: number } | undefined;
  controller.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.trim().split('\n'))
      try {
        lastMem = JSON.parse(line);
      } catch {
        /* partial line */
      }
  });

  const token = await serviceAccountToken(admin, NS, 'default');
  const applied = new Map<number, Map<string, number>>(); // agent -> tables version -> time
  const watchers: ConfigWatcher[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const seen = new Map<string, number>();
    applied.set(i, seen);
    watchers.push(
      await startConfigWatcher({
        server: cp.server,
        token,
        ca: cp.caPem,
        namespace: NS,
        podName: `client-${i}`,
        labels: { app: `client-${i % CLASSES}` },
        proxy: {
          applyTables: (json) => {
            const v = validateTables(json);
            if (!v.ok) return { ok: false, version: '', errors: v.errors };
            seen.set(v.value.version, performance.now());
            return { ok: true, version: v.value.version };
          },
          applyEndpoints: (json) => {
            const v = validateEndpoints(json);
            return v.ok
              ? { ok: true, version: v.value.version }
              : { ok: false, version: '', errors: v.errors };
          },
        },
      }),
    );
  }
  await waitFor('every agent configured', () => watchers.every((w) => w.status()?.tables), 60_000);

  const latencies: number[] = [];
  const perRound: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const w1 = round % 2 ? 90 : 10;
    const doc = {
      apiVersion: 'networking.istio.io/v1beta1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: NS },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            route: [
              { destination: { host: 'reviews', subset: 'v1' }, weight: w1 },
              { destination: { host: 'reviews', subset: 'v2' }, weight: 100 - w1 },
            ],
          },
        ],
      },
    };
    const before = watchers.map((w) => w.status()?.tables);
    const r = await cp.kubectl(['apply', '-f', '-'], { input: stringify(doc) });
    if (r.code !== 0) throw new Error(r.stderr);
    const t0 = performance.now();
    await waitFor(
      `round ${round}: all agents applied`,
      () => watchers.every((w, i) => w.status()?.tables && w.status()?.tables !== before[i]),
      30_000,
      5,
    );
    let worst = 0;
    watchers.forEach((w, i) => {
      const at = applied.get(i)!.get(w.status()!.tables)!;
      const ms = Math.max(0, at - t0);
      latencies.push(ms);
      worst = Math.max(worst, ms);
    });
    perRound.push(worst);
    await new Promise((res) => setTimeout(res, 300));
  }
  await new Promise((res) => setTimeout(res, 3000));
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  console.log(`convergence: ${AGENTS} agents, ${CLASSES} workload classes, ${ROUNDS} VirtualService applies`);
  console.log(
    `  kubectl apply returned -> agent applied: p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms (${latencies.length} samples)`,
  );
  console.log(
    `  slowest agent per apply: p50 ${pct(perRound, 50).toFixed(0)} ms, max ${Math.max(...perRound).toFixed(0)} ms`,
  );
  if (lastMem)
    console.log(
      `  controller at steady state: RSS ${mb(lastMem.rss)}, heap ${mb(lastMem.heapUsed)}, ${lastMem.classes} classes`,
    );
  for (const w of watchers) await w.close();
  controller.kill('SIGTERM');
  admin.close();
} finally {
  await cp.stop();
}
