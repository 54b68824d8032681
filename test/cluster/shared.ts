// One cluster per mocha run, shared by the cluster suites (kept on globalThis, like envtest's
// control plane, since mocha may load this module twice).
import type { Cluster, ClusterOptions } from './cluster.js';

/** Provisioning (first build: 10-20 min) + start + image builds. */
export const CLUSTER_TIMEOUT_MS = 30 * 60 * 1000;

interface State {
  cluster?: Promise<Cluster>;
}
const KEY = Symbol.for('isthmus.cluster.shared');
const globals = globalThis as unknown as Record<symbol, State | undefined>;
globals[KEY] ??= {};
const state: State = globals[KEY];

export function getSharedCluster(opts?: ClusterOptions): Promise<Cluster> {
  state.cluster ??= import('./cluster.js').then(({ startCluster }) => startCluster(opts));
  return state.cluster;
}

export async function stopSharedCluster(): Promise<void> {
  const pending = state.cluster;
  state.cluster = undefined;
  const cluster = await pending?.catch(() => undefined);
  await cluster?.stop();
}
