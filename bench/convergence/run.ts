/**
 * Convergence against the real apiserver (envtest): `kubectl apply` of a VirtualService
 * returning -> every affected agent having applied the new tables. 50 agents, each its own
 * process (bench/convergence/agent.ts: the agent's config watcher with a service-account
 * token from the TokenRequest API and only the Roles the controller grants, validating what
 * it receives as the proxy does). The controller runs as a separate process too, so its RSS
 * is its own. Agents report the time they applied a version (epoch ms from the same clock).
 *   npx tsx bench/convergence/run.ts [--agents 50] [--rounds 20]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { endpointSliceVersion } from '../../src/config-source/kubernetes-discovery.js';
import { restFromKubeConfig } from '../../src/config-source/kubernetes-rest.js';
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
/** Every process started here, stopped on the way out whatever happens. */
const children: ChildProcess[] = [];
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
  children.push(controller);
  let lastMem: { rss: number; heapUsed: number; classes: number } | undefined;
  controller.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.trim().split('\n'))
      try {
        lastMem = JSON.parse(line);
      } catch {
        /* partial line */
      }
  });

  const tokenFile = join(cp.dir, 'bench-agent.token');
  writeFileSync(tokenFile, await serviceAccountToken(admin, NS, 'default'));
  // Per agent: tables version -> epoch ms it was applied, and the latest version.
  const applied = Array.from({ length: AGENTS }, () => new Map<string, number>());
  const latest: Array<string | undefined> = Array.from({ length: AGENTS }, () => undefined);
  const ready = Array.from({ length: AGENTS }, () => false);
  const agents: ChildProcess[] = [];
  const spawnAgent = (i: number) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(PROJECT_ROOT, 'bench/convergence/agent.ts'),
        cp.server,
        tokenFile,
        join(cp.dir, 'ca.crt'),
        NS,
        `client-${i}`,
        JSON.stringify({ app: `client-${i % CLASSES}` }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const m = JSON.parse(buf.slice(0, nl)) as { ready?: boolean; tables?: string; at?: number };
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (m.ready) ready[i] = true;
        if (m.tables && m.at !== undefined) {
          // Versions recur (the rounds alternate two splits): keep the latest apply.
          applied[i]!.set(m.tables, m.at);
          latest[i] = m.tables;
        }
      }
    });
    agents.push(child);
    children.push(child);
  };
  // Started a few at a time: 50 processes compiling TypeScript at once starve a small machine.
  const started = performance.now();
  for (let i = 0; i < AGENTS; i += 5) {
    for (let j = i; j < Math.min(AGENTS, i + 5); j++) spawnAgent(j);
    await waitFor(
      `agents ${i}..${i + 4} configured`,
      () => ready.slice(0, i + 5).every(Boolean),
      120_000,
      50,
    );
  }
  console.log(
    `${AGENTS} agent processes configured in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

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
    const before = [...latest];
    const r = await cp.kubectl(['apply', '-f', '-'], { input: stringify(doc) });
    if (r.code !== 0) throw new Error(r.stderr);
    const t0 = performance.timeOrigin + performance.now();
    await waitFor(
      `round ${round}: all agents applied`,
      () => latest.every((v, i) => v && v !== before[i]),
      30_000,
      5,
    );
    let worst = 0;
    latest.forEach((v, i) => {
      const ms = Math.max(0, applied[i]!.get(v!)! - t0);
      latencies.push(ms);
      worst = Math.max(worst, ms);
    });
    perRound.push(worst);
    await new Promise((res) => setTimeout(res, 300));
  }
  await new Promise((res) => setTimeout(res, 3000));
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  console.log(
    `convergence: ${AGENTS} agent processes, ${CLASSES} workload classes, ${ROUNDS} VirtualService applies (load average ${load})`,
  );
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
  for (const a of agents) a.kill('SIGTERM');
  controller.kill('SIGTERM');
  admin.close();
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await cp.stop();
}
