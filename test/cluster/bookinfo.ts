// The scenarios' common ground, set up once per mocha run whichever cluster suite runs first: the
// mesh installed, the bookinfo sample in an injected namespace (`bookinfo`) and a plain one
// (`plain`), and client pods (kept on globalThis like the cluster, see shared.ts).
import type { Cluster } from './cluster.js';
import { IMAGES } from './config.js';
import { installMesh } from './mesh.js';
import { bookinfoManifest, clientPod } from './pods.js';
import { getSharedCluster } from './shared.js';

export const MESHED = 'bookinfo';
export const PLAIN = 'plain';
export const SAMPLE_APPS = ['details', 'ratings', 'reviews', 'productpage'];

/** Polls `check` every second until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface State {
  ready?: Promise<Cluster>;
}
const KEY = Symbol.for('isthmus.cluster.bookinfo');
const globals = globalThis as unknown as Record<symbol, State | undefined>;
globals[KEY] ??= {};
const state: State = globals[KEY];

/**
 * The shared cluster with the mesh and the sample deployed (not waited for: the first suite's
 * tests watch them come up). Prints the cluster start time once.
 */
export function bookinfoCluster(): Promise<Cluster> {
  state.ready ??= (async () => {
    const cluster = await getSharedCluster();
    process.stderr.write(`[cluster] start time: ${cluster.startSeconds.toFixed(1)}s\n`);
    await installMesh(cluster);
    await cluster.kubectlOk(['create', 'namespace', MESHED]);
    await cluster.kubectlOk(['label', 'namespace', MESHED, 'istio-injection=enabled']);
    await cluster.kubectlOk(['create', 'namespace', PLAIN]);
    // The sidecar mounts ConfigMap istio-ca-root-cert: the controller's CA publishes it into every
    // namespace (a periodic sync for now), so the injected pods wait for it.
    await waitFor('the controller to publish istio-ca-root-cert into the new namespace', 90_000, async () => {
      const res = await cluster.kubectl([
        '-n',
        MESHED,
        'get',
        'configmap',
        'istio-ca-root-cert',
        '-o',
        'name',
      ]);
      return res.code === 0;
    });
    const manifest = bookinfoManifest();
    await cluster.kubectlOk(['-n', MESHED, 'apply', '-f', '-'], { input: manifest });
    await cluster.kubectlOk(['-n', PLAIN, 'apply', '-f', '-'], { input: manifest });
    await cluster.kubectlOk(['-n', MESHED, 'apply', '-f', '-'], {
      input: clientPod('uninjected-client', IMAGES.bookinfo, { 'sidecar.istio.io/inject': 'false' }),
    });
    await cluster.kubectlOk(['-n', PLAIN, 'apply', '-f', '-'], {
      input: clientPod('client', IMAGES.bookinfo),
    });
    // A meshed client (ServiceAccount `default`): traffic policies apply in its sidecar.
    await cluster.kubectlOk(['-n', MESHED, 'apply', '-f', '-'], {
      input: clientPod('client', IMAGES.bookinfo),
    });
    return cluster;
  })();
  return state.ready;
}
