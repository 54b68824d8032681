// The node's Kubernetes components: kubelet (remote runtime = our containerd), kube-proxy
// (iptables mode) and kube-scheduler, with the settings real-cluster.md lists.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, type ManagedProcess, spawnLogged } from '../envtest/process.js';
import {
  CLUSTER_DOMAIN,
  GATEWAY_IP,
  IMAGES,
  KUBELET_PORT,
  LOG_DIR,
  NODE_NAME,
  POD_CIDR,
  RUN_DIR,
} from './config.js';
import { record } from './state.js';

export interface NodeProcesses {
  kubelet: ManagedProcess;
  kubeProxy: ManagedProcess;
  scheduler: ManagedProcess;
  kubeletRoot: string;
}

export async function startNodeComponents(opts: {
  binDir: string;
  kubeconfig: string;
  containerdSocket: string;
}): Promise<NodeProcesses> {
  const kubeletRoot = join(RUN_DIR, 'kubelet');
  mkdirSync(kubeletRoot, { recursive: true });
  const resolvConf = join(RUN_DIR, 'node-resolv.conf');
  // Pods with dnsPolicy Default get this, not the machine's resolvers.
  writeFileSync(resolvConf, `nameserver ${GATEWAY_IP}\n`);
  record({ KUBELET_ROOT: kubeletRoot, KUBE_PROXY_BIN: join(opts.binDir, 'kube-proxy') });
  const [proxyMetrics, proxyHealthz] = (await freePorts(2)) as [number, number];

  const scheduler = spawnLogged(
    'kube-scheduler',
    join(opts.binDir, 'kube-scheduler'),
    [
      `--kubeconfig=${opts.kubeconfig}`,
      `--authentication-kubeconfig=${opts.kubeconfig}`,
      `--authorization-kubeconfig=${opts.kubeconfig}`,
      '--leader-elect=false',
      '--port=0',
      '--secure-port=0',
      '--profiling=false',
    ],
    join(LOG_DIR, 'kube-scheduler.log'),
  );
  record({ SCHEDULER_PID: scheduler.pid });

  const kubeProxy = spawnLogged(
    'kube-proxy',
    join(opts.binDir, 'kube-proxy'),
    [
      `--kubeconfig=${opts.kubeconfig}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${POD_CIDR}`,
      `--hostname-override=${NODE_NAME}`,
      `--bind-address=${GATEWAY_IP}`,
      // 0 = leave the machine's conntrack sysctls alone (this VM may refuse them)
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      `--metrics-bind-address=127.0.0.1:${proxyMetrics}`,
      `--healthz-bind-address=127.0.0.1:${proxyHealthz}`,
      '--iptables-min-sync-period=0s',
      '--profiling=false',
    ],
    join(LOG_DIR, 'kube-proxy.log'),
  );
  record({ KUBE_PROXY_PID: kubeProxy.pid, KUBE_PROXY_STARTED: 1 });

  const kubelet = spawnLogged(
    'kubelet',
    join(opts.binDir, 'kubelet'),
    [
      `--kubeconfig=${opts.kubeconfig}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${GATEWAY_IP}`,
      `--address=${GATEWAY_IP}`,
      `--port=${KUBELET_PORT}`,
      '--read-only-port=0',
      '--healthz-port=0',
      '--container-runtime=remote',
      `--container-runtime-endpoint=unix://${opts.containerdSocket}`,
      '--runtime-request-timeout=5m',
      '--cgroup-driver=cgroupfs',
      '--cgroups-per-qos=false',
      '--enforce-node-allocatable=',
      '--fail-swap-on=false',
      `--cluster-dns=${GATEWAY_IP}`,
      `--cluster-domain=${CLUSTER_DOMAIN}`,
      `--resolv-conf=${resolvConf}`,
      `--pod-infra-container-image=${IMAGES.pause}`,
      '--eviction-hard=',
      '--image-gc-high-threshold=100',
      '--image-gc-low-threshold=99',
      `--root-dir=${kubeletRoot}`,
      `--volume-plugin-dir=${join(kubeletRoot, 'volume-plugins')}`,
      '--serialize-image-pulls=false',
      '--node-status-update-frequency=4s',
      '--sync-frequency=10s',
      '--v=1',
    ],
    join(LOG_DIR, 'kubelet.log'),
  );
  record({ KUBELET_PID: kubelet.pid });
  return { kubelet, kubeProxy, scheduler, kubeletRoot };
}
