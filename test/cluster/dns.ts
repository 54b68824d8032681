// Cluster DNS: dnsmasq on the bridge address answering `<svc>.<ns>.svc.cluster.local` from a hosts
// file that a poll of the Services keeps current (rewritten on change, then SIGHUP). It forwards
// nothing: names outside the cluster get no answer.
import { Resolver } from 'node:dns/promises';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { type ManagedProcess, sleep, spawnLogged, tailFile } from '../envtest/process.js';
import { CLUSTER_DOMAIN, GATEWAY_IP, LOG_DIR, RUN_DIR } from './config.js';
import { record } from './state.js';

export interface ClusterDns {
  readonly process: ManagedProcess;
  /** Resolves once the hosts file reflects the Services as of now. */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

export function hostsFile(services: { name: string; namespace: string; clusterIP?: string }[]): string {
  return services
    .filter((s) => s.clusterIP && s.clusterIP !== 'None')
    .map(
      (s) => `${s.clusterIP} ${s.name}.${s.namespace}.svc.${CLUSTER_DOMAIN} ${s.name}.${s.namespace}.svc\n`,
    )
    .sort()
    .join('');
}

export async function startDns(kubeConfig: KubeConfig, intervalMs = 500): Promise<ClusterDns> {
  const hosts = join(RUN_DIR, 'dns.hosts');
  const core = kubeConfig.makeApiClient(CoreV1Api);
  let current = '';
  let stopped = false;
  let dnsmasq: ManagedProcess | undefined;
  const refresh = async (): Promise<void> => {
    const list = await core.listServiceForAllNamespaces();
    const content = hostsFile(
      list.items.map((s) => ({
        name: s.metadata?.name ?? '',
        namespace: s.metadata?.namespace ?? '',
        ...(s.spec?.clusterIP ? { clusterIP: s.spec.clusterIP } : {}),
      })),
    );
    if (content === current) return;
    writeFileSync(`${hosts}.tmp`, content, { mode: 0o644 });
    renameSync(`${hosts}.tmp`, hosts);
    current = content;
    // (dnsmasq is only signalled once it is up: SIGHUP before its handler is installed kills it)
    if (dnsmasq?.isRunning()) process.kill(dnsmasq.pid, 'SIGHUP');
  };
  // The first hosts file is in place before dnsmasq starts.
  await refresh();
  const proc = spawnLogged(
    'dnsmasq',
    'dnsmasq',
    [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      `--listen-address=${GATEWAY_IP}`,
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      `--local=/${CLUSTER_DOMAIN}/`,
      '--domain-needed',
      `--addn-hosts=${hosts}`,
      `--pid-file=${join(RUN_DIR, 'dnsmasq.pid')}`,
      '--user=root',
      '--log-facility=-',
      '--cache-size=0',
    ],
    join(LOG_DIR, 'dnsmasq.log'),
  );
  record({ DNSMASQ_PID: proc.pid });

  // Ready when it answers for the `kubernetes` Service (first hosts file written and loaded).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (!proc.isRunning()) throw new Error(`[cluster] dnsmasq exited: ${tailFile(proc.logFile)}`);
    if (await answers()) break;
    if (Date.now() > deadline)
      throw new Error(`[cluster] dnsmasq does not answer: ${tailFile(proc.logFile)}`);
    await sleep(100);
  }
  dnsmasq = proc;
  let chain: Promise<void> = Promise.resolve();
  const sync = (): Promise<void> => {
    chain = chain.then(refresh, refresh).catch(() => {});
    return chain;
  };
  const loop = (async () => {
    while (!stopped) {
      await sync();
      await sleep(intervalMs);
    }
  })();
  return {
    process: proc,
    sync,
    async stop() {
      stopped = true;
      await loop;
      await proc.stop({ graceMs: 1000 });
    },
  };
}

/** Resolves `name` through the cluster DNS only. */
export async function resolveInCluster(name: string): Promise<string[]> {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([GATEWAY_IP]);
  return resolver.resolve4(name);
}

async function answers(): Promise<boolean> {
  try {
    return (await resolveInCluster(`kubernetes.default.svc.${CLUSTER_DOMAIN}`)).length > 0;
  } catch {
    return false;
  }
}
