/**
 * `isthmus install`: prints the install manifests (crds/, config/, webhooks/) rendered for an
 * image and a control-plane namespace, or applies them with kubectl (`--apply`). The manifests
 * stay plain files, so `kubectl apply -f crds/ -f config/ -f webhooks/` installs the same thing.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseAllDocuments, stringify } from 'yaml';
import { DEFAULT_ROOT_NAMESPACE } from '../../api/mesh.js';
import { CONFIG_DIR, CRDS_DIR, WEBHOOKS_DIR } from '../../util/paths.js';

export interface InstallOptions {
  image?: string;
  namespace: string;
}

type Obj = Record<string, unknown> & { kind?: string; metadata?: Record<string, unknown> };

/** Renders every install manifest; pure apart from reading the files. */
export function renderInstall(opts: InstallOptions): Obj[] {
  const out: Obj[] = [];
  for (const dir of [CRDS_DIR, CONFIG_DIR, WEBHOOKS_DIR]) {
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
        const obj = doc.toJS() as Obj | null;
        if (!obj?.kind) continue;
        out.push(retarget(obj, opts));
      }
    }
  }
  return out;
}

function retarget(obj: Obj, opts: InstallOptions): Obj {
  // Rewrites every mention of the default control-plane namespace (metadata, subjects, Service
  // references of webhooks) so one option moves the whole installation.
  let text = JSON.stringify(obj);
  if (opts.namespace !== DEFAULT_ROOT_NAMESPACE) {
    text = text.replaceAll(`"namespace":"${DEFAULT_ROOT_NAMESPACE}"`, `"namespace":"${opts.namespace}"`);
    if (obj.kind === 'Namespace')
      text = text.replace(`"name":"${DEFAULT_ROOT_NAMESPACE}"`, `"name":"${opts.namespace}"`);
  }
  const out = JSON.parse(text) as Obj;
  if (opts.image && out.kind === 'Deployment') {
    const spec = out.spec as {
      template: { spec: { containers: Array<{ image: string; args?: string[] }> } };
    };
    for (const c of spec.template.spec.containers) {
      c.image = opts.image;
      // The controller injects the image it runs as, unless told otherwise.
      if (c.args?.[0] === 'controller' && !c.args.includes('--proxy-image'))
        c.args.push('--proxy-image', opts.image);
    }
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('install')
    .description('Print (or --apply) the manifests that install the mesh: CRDs, controller, webhooks')
    .option('--image <image>', 'controller and sidecar image')
    .option('-n, --namespace <ns>', 'control-plane namespace', DEFAULT_ROOT_NAMESPACE)
    .option('--apply', 'apply with kubectl instead of printing')
    .option('--kubeconfig <file>', 'kubeconfig for --apply')
    .action((opts: { image?: string; namespace: string; apply?: boolean; kubeconfig?: string }) => {
      const docs = renderInstall({ namespace: opts.namespace, ...(opts.image ? { image: opts.image } : {}) });
      const text = docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
      if (!opts.apply) {
        process.stdout.write(text);
        return;
      }
      const args = ['apply', '-f', '-', ...(opts.kubeconfig ? ['--kubeconfig', opts.kubeconfig] : [])];
      const res = spawnSync('kubectl', args, { input: text, encoding: 'utf8' });
      if (res.error) throw new Error(`cannot run kubectl: ${res.error.message}`);
      process.stdout.write(res.stdout);
      process.stderr.write(res.stderr);
      if (res.status !== 0) process.exitCode = res.status ?? 1;
    });
}
