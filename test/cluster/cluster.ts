// A real single-node Kubernetes on this machine: the envtest control plane (with the controllers
// and apiserver flags a node needs) plus containerd, the CNI bridge, kubelet, kube-proxy,
// kube-scheduler and dnsmasq. One per machine (a lock); torn down by stop(), by the process's
// exit/signal handlers, or by `npm run cluster:down` after a crash.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  type ControlPlane,
  DEFAULT_CONTROLLERS,
  ensureProvisioned,
  k8sBinDir,
  startControlPlane,
} from '../envtest/index.js';
import { sleep, tailFile } from '../envtest/process.js';
import { GATEWAY_IP, IMAGES, KUBELET_PORT, LOG_DIR, NODE_NAME, RUN_DIR } from './config.js';
import { type Containerd, removeStaleContainers, startContainerd } from './containerd.js';
import { type ClusterDns, startDns } from './dns.js';
import { log } from './exec.js';
import { ensureBookinfoImage, ensurePauseImage, ensureProjectImage } from './images.js';
import { guardPort, setUpNetwork } from './network.js';
import { type NodeProcesses, startNodeComponents } from './node.js';
import { acquireLock, record, teardownSync } from './state.js';

export const NODE_CONTROLLERS = ['nodelifecycle', ...DEFAULT_CONTROLLERS];

export interface Cluster {
  readonly controlPlane: ControlPlane;
  readonly containerd: Containerd;
  readonly dns: ClusterDns;
  readonly node: NodeProcesses;
  readonly images: typeof IMAGES;
  /** Seconds from startCluster() to a Ready node. */
  readonly startSeconds: number;
  kubectl: ControlPlane['kubectl'];
  /** kubectl that throws on a non-zero exit; returns stdout. */
  kubectlOk(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Also build/import the project image and the bookinfo image (default true). */
  images?: boolean;
}

let exitHandlersInstalled = false;
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  // envtest's handlers (installed first) SIGKILL the children; this one removes the rest.
  process.on('exit', teardownSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      teardownSync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

async function waitForNodeReady(cp: ControlPlane, node: NodeProcesses, timeoutMs: number): Promise<void> {
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  let last = 'not registered';
  while (Date.now() < deadline) {
    for (const p of [node.kubelet, node.kubeProxy, node.scheduler]) {
      if (!p.isRunning())
        throw new Error(`[cluster] ${p.name} exited (${await p.exited}):\n${tailFile(p.logFile)}`);
    }
    try {
      const n = await core.readNode({ name: NODE_NAME });
      const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
      const tainted = (n.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/not-ready');
      if (ready?.status === 'True' && !tainted) return;
      last = `Ready=${ready?.status} (${ready?.message ?? ''}) taints=${JSON.stringify(n.spec?.taints ?? [])}`;
    } catch {}
    await sleep(250);
  }
  throw new Error(
    `[cluster] node not Ready after ${timeoutMs}ms: ${last}\n${tailFile(node.kubelet.logFile, 30)}`,
  );
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const started = Date.now();
  const binDir = k8sBinDir();
  await ensureProvisioned(binDir);
  installExitHandlers();
  await acquireLock();
  mkdirSync(LOG_DIR, { recursive: true });
  log(`starting a single-node cluster (state ${RUN_DIR}, logs ${LOG_DIR})`);
  let controlPlane: ControlPlane | undefined;
  let dns: ClusterDns | undefined;
  try {
    const cniConfDir = join(RUN_DIR, 'cni', 'net.d');
    mkdirSync(cniConfDir, { recursive: true });
    await setUpNetwork({ cniConfDir });
    await guardPort(KUBELET_PORT);
    const containerd = await startContainerd();
    await removeStaleContainers(containerd);
    const images = (async () => {
      await ensurePauseImage(containerd.ctr);
      if (opts.images !== false) {
        await ensureProjectImage(containerd.ctr);
        await ensureBookinfoImage(containerd.ctr);
      }
    })();
    images.catch(() => {}); // awaited below
    controlPlane = await startControlPlane({
      controllers: NODE_CONTROLLERS,
      extraApiserverArgs: [
        // pods reach the apiserver through the `kubernetes` Service at the bridge address
        '--bind-address=0.0.0.0',
        `--advertise-address=${GATEWAY_IP}`,
      ],
    });
    const cp = controlPlane;
    // it listens on every address now: only loopback and pods may connect
    await guardPort(cp.port);
    record({ CONTROL_PLANE_DIR: cp.dir });
    dns = await startDns(cp.kubeConfig);
    const node = await startNodeComponents({
      binDir,
      kubeconfig: cp.kubeconfigPath,
      containerdSocket: containerd.socket,
    });
    await images;
    await waitForNodeReady(cp, node, 90_000);
    const startSeconds = (Date.now() - started) / 1000;
    log(`cluster up in ${startSeconds.toFixed(1)}s (KUBECONFIG=${cp.kubeconfigPath})`);
    const clusterDns = dns;
    let stopped = false;
    return {
      controlPlane: cp,
      containerd,
      dns: clusterDns,
      node,
      images: IMAGES,
      startSeconds,
      kubectl: cp.kubectl,
      async kubectlOk(args, kopts) {
        const res = await cp.kubectl(args, kopts);
        if (res.code !== 0)
          throw new Error(`kubectl ${args.join(' ')} exited ${res.code}: ${res.stderr || res.stdout}`);
        return res.stdout;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        const t = Date.now();
        await clusterDns.stop().catch(() => {});
        teardownSync();
        await cp.stop();
        log(`cluster torn down in ${((Date.now() - t) / 1000).toFixed(1)}s`);
      },
    };
  } catch (err) {
    await dns?.stop().catch(() => {});
    teardownSync();
    await controlPlane?.stop().catch(() => {});
    throw err;
  }
}
