/**
 * Shared by the tests that build a pod network namespace: command runners, the UID-1337
 * prefix, and the istio-init command taken from a real injected pod spec (so the tests run
 * exactly what the webhook would put in a pod).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { defaultInjectContext, INIT_CONTAINER_NAME, injectPod } from '../src/inject/index.js';
import { PROJECT_ROOT } from '../src/util/paths.js';

export const ROOT = PROJECT_ROOT;
export const ADDON = join(ROOT, 'native', 'original-dst', 'build', 'Release', 'original_dst.node');

/** Runs a command as the proxy (UID/GID 1337), whose traffic the rules exempt. */
export const AS_PROXY = ['setpriv', '--reuid=1337', '--regid=1337', '--clear-groups'];

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string[], timeout = 20_000): Run {
  const [file, ...args] = cmd;
  const r = spawnSync(file!, args, { cwd: ROOT, encoding: 'utf8', timeout });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}

export function must(cmd: string[]): string {
  const r = run(cmd);
  if (r.status !== 0) throw new Error(`\`${cmd.join(' ')}\` failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * The `isthmus iptables` arguments of the istio-init container injected into a pod that
 * declares no ports (so every inbound port is captured), without the leading `iptables`.
 */
export function istioInitArgs(): string[] {
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app', namespace: 'default' },
    spec: { containers: [{ name: 'app', image: 'app' }] },
  };
  const result = injectPod(pod, defaultInjectContext());
  if (result.kind !== 'injected') throw new Error(`injection did not happen: ${JSON.stringify(result)}`);
  const init = result.pod.spec?.initContainers?.find((c) => c.name === INIT_CONTAINER_NAME);
  const args = init?.args ?? [];
  if (args[0] !== 'iptables') throw new Error(`unexpected istio-init args: ${JSON.stringify(args)}`);
  return args.slice(1);
}
