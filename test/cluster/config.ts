// Addresses, names and paths of the single-node cluster. Everything the node adds to the machine
// lives in the pod range, the Service range, the bridge, and the directories below.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_CLUSTER_IP_RANGE } from '../envtest/index.js';

export const NODE_NAME = 'isthmus-node';
export const BRIDGE = 'cni0';
export const POD_CIDR = '10.244.0.0/24';
/** The bridge's address: pods' gateway, the node IP (kubelet, InternalIP) and the DNS server. */
export const GATEWAY_IP = '10.244.0.1';
export const SERVICE_CIDR = SERVICE_CLUSTER_IP_RANGE;
export const CLUSTER_DOMAIN = 'cluster.local';
export const CNI_BIN_DIR = '/usr/lib/cni';
export const KUBELET_PORT = 10250;

/** Persistent across runs: containerd's content store and snapshots (imported images), image tars. */
export function clusterCacheDir(): string {
  return process.env.ISTHMUS_CLUSTER_CACHE ?? join(homedir(), '.cache', 'isthmus', 'cluster');
}

/** Base of the per-run state; `run/` in it is also the single-cluster-per-machine lock. */
export const STATE_BASE = process.env.ISTHMUS_CLUSTER_STATE ?? '/var/lib/isthmus-cluster';
export const RUN_DIR = join(STATE_BASE, 'run');
/** Logs of the last run (kept after teardown for debugging). */
export const LOG_DIR = join(STATE_BASE, 'logs');

export const IMAGES = {
  pause: 'docker.io/isthmus/pause:3.4.1',
  project: 'docker.io/isthmus/isthmus:dev',
  bookinfo: 'docker.io/isthmus/bookinfo:dev',
} as const;
