/**
 * `isthmus kube-inject -f FILE|DIR|-`: prints manifests with the sidecar injected, exactly as the webhook
 * would inject their pods. Skips and advice go to stderr; bad input fails with the file and document index.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Command } from 'commander';
import { defaultInjectContext } from '../../inject/context.js';
import { kubeInject } from '../../inject/kube-inject.js';
import { loadSidecarTemplate } from '../../inject/template.js';
import type { InjectContext } from '../../inject/types.js';

interface KubeInjectOptions {
  filename: string;
  output?: string;
  image?: string;
  nativeSidecars?: boolean;
  clusterVersion?: string;
  controlPlaneNamespace?: string;
  trustDomain?: string;
  template?: string;
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

export function register(program: Command): void {
  program
    .command('kube-inject')
    .description(
      'inject the sidecar into Kubernetes manifests (Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods, Lists)',
    )
    .requiredOption('-f, --filename <path>', 'manifest file, directory of manifests, or - for stdin')
    .option('-o, --output <file>', 'write the result to a file instead of stdout')
    .option('--image <image>', 'proxy image (default: docker.io/isthmus/isthmus:<version>)')
    .option(
      '--native-sidecars',
      'inject the proxy as a native sidecar (init container, restartPolicy Always)',
    )
    .option('--no-native-sidecars', 'inject the proxy as a regular container')
    .option(
      '--cluster-version <version>',
      'Kubernetes version of the target cluster; 1.29+ gets native sidecars',
    )
    .option('--control-plane-namespace <ns>', 'namespace of the control plane', 'istio-system')
    .option('--trust-domain <domain>', 'mesh trust domain', 'cluster.local')
    .option('--template <file>', 'sidecar template to use instead of webhooks/sidecar-template.yaml')
    .action(async (opts: KubeInjectOptions) => {
      const ctx = contextFrom(opts);
      const parts: string[] = [];
      for (const { name, text } of await readInputs(opts.filename)) {
        const { output, warnings } = kubeInject(text, ctx, name);
        for (const w of warnings) process.stderr.write(`${w}\n`);
        parts.push(output.endsWith('\n') || output === '' ? output : `${output}\n`);
      }
      // Files are concatenated as one stream of documents.
      const result = parts.filter((p) => p !== '').join('---\n');
      if (opts.output) writeFileSync(opts.output, result);
      else process.stdout.write(result);
    });
}

function contextFrom(opts: KubeInjectOptions): InjectContext {
  const overrides: Partial<InjectContext> = {
    controlPlaneNamespace: opts.controlPlaneNamespace ?? 'istio-system',
    trustDomain: opts.trustDomain ?? 'cluster.local',
  };
  if (opts.image) overrides.proxyImage = opts.image;
  if (opts.nativeSidecars !== undefined) overrides.nativeSidecars = opts.nativeSidecars;
  if (opts.clusterVersion) overrides.clusterVersion = opts.clusterVersion;
  if (opts.template) overrides.template = loadSidecarTemplate(opts.template);
  return defaultInjectContext(overrides);
}

async function readInputs(path: string): Promise<Array<{ name: string; text: string }>> {
  if (path === '-') return [{ name: '<stdin>', text: await readStdin() }];
  if (!statSync(path).isDirectory()) return [{ name: path, text: readFileSync(path, 'utf8') }];
  return listManifests(path).map((file) => ({ name: file, text: readFileSync(file, 'utf8') }));
}

/** Manifests under a directory, recursively, in a stable (sorted) order. */
function listManifests(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listManifests(full));
    else if (MANIFEST_EXTENSIONS.has(extname(entry.name))) out.push(full);
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
