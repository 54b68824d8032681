// Installs the mesh the way a user does: `kubectl apply -f crds/ -f config/ -f webhooks/`, with
// the controller's image (and the image it injects) pointed at the locally imported one.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../envtest/process.js';
import type { Cluster } from './cluster.js';
import { IMAGES } from './config.js';
import { log } from './exec.js';
import { REPO_ROOT } from './images.js';

export const MESH_NAMESPACE = 'istio-system';
const RELEASE_IMAGE = /image: docker\.io\/isthmus\/isthmus:[\w.-]+/g;

/** config/*.yaml with the release image replaced by `image`, which the controller also injects. */
export function renderConfig(image: string): string {
  const dir = join(REPO_ROOT, 'config');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) =>
      readFileSync(join(dir, f), 'utf8')
        .replace(RELEASE_IMAGE, `image: ${image}`)
        .replace(/args: \["controller"/, `args: ["controller", "--proxy-image=${image}"`),
    )
    .join('\n---\n');
}

/** Kubernetes objects among webhooks/*.yaml (the sidecar template there is data, not an object). */
export function webhookManifests(): string[] {
  const dir = join(REPO_ROOT, 'webhooks');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && /^\s*kind:/m.test(readFileSync(join(dir, f), 'utf8')))
    .sort()
    .map((f) => join(dir, f));
}

export async function installMesh(cluster: Cluster, timeoutMs = 120_000): Promise<void> {
  const started = Date.now();
  const image = IMAGES.project;
  const files = ['-f', join(REPO_ROOT, 'crds'), '-f', '-', ...webhookManifests().flatMap((f) => ['-f', f])];
  await cluster.kubectlOk(['apply', ...files], { input: renderConfig(image) });
  await cluster.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
  const rollout = await cluster.kubectl(
    [
      '-n',
      MESH_NAMESPACE,
      'rollout',
      'status',
      'deployment/isthmus-controller',
      `--timeout=${Math.round(timeoutMs / 1000)}s`,
    ],
    { timeoutMs: timeoutMs + 5000 },
  );
  if (rollout.code !== 0) {
    const pods = await cluster.kubectl(['-n', MESH_NAMESPACE, 'get', 'pods', '-o', 'wide']);
    const logs = await cluster.kubectl([
      '-n',
      MESH_NAMESPACE,
      'logs',
      'deployment/isthmus-controller',
      '--tail=40',
    ]);
    const describe = await cluster.kubectl(['-n', MESH_NAMESPACE, 'describe', 'pods']);
    throw new Error(
      `[cluster] isthmus-controller did not roll out: ${rollout.stderr}\n${pods.stdout}\n${logs.stdout}${logs.stderr}\n${describe.stdout.slice(-3000)}`,
    );
  }
  // The controller fills in the webhooks' caBundle once it has its serving certificate.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const out = await cluster.kubectlOk([
      'get',
      'mutatingwebhookconfiguration,validatingwebhookconfiguration',
      '-o',
      'jsonpath={range .items[*]}{.webhooks[0].clientConfig.caBundle}{"\\n"}{end}',
    ]);
    const bundles = out.split('\n').filter((l) => l.trim() !== '');
    if (bundles.length >= 2) break;
    if (Date.now() > deadline)
      throw new Error('[cluster] webhook caBundles were never filled in by the controller');
    await sleep(250);
  }
  log(`mesh installed in ${((Date.now() - started) / 1000).toFixed(1)}s (controller image ${image})`);
}
