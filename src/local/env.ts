/**
 * The environment of a local app: like a pod's, only what the manifest gives (plus PATH/HOME so
 * commands run), `valueFrom.fieldRef` resolved against the local "pod", and the mesh wiring:
 * PORT/BIND_ADDRESS (the app listens on 127.0.0.1:<its port>, behind its sidecar) and
 * HTTP_PROXY=<its sidecar's outbound listener>, so `http://reviews:9080/...` goes through the
 * sidecar, which routes by the Host (explicit-proxy mode). NO_PROXY keeps loopback direct.
 */
import type { EnvVar } from './manifests.js';
import type { LocalPod } from './sidecar.js';

const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'SystemRoot'];

function fieldValue(pod: LocalPod, path: string): string {
  const w = pod.placement.workload.identity;
  const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
  if (label) return w.labels[label[1]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.name;
    case 'metadata.namespace':
      return w.namespace;
    case 'status.podIP':
      return pod.ip;
    case 'status.hostIP':
      return '127.0.0.1';
    case 'spec.nodeName':
      return 'localhost';
    case 'spec.serviceAccountName':
      return w.serviceAccount;
    default:
      return '';
  }
}

export function appEnv(pod: LocalPod, vars: readonly EnvVar[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  env.HOSTNAME = pod.name;
  for (const v of vars) env[v.name] = v.fieldPath ? fieldValue(pod, v.fieldPath) : (v.value ?? '');
  const proxy = `http://${pod.ip}:${pod.outboundPort}`;
  Object.assign(env, {
    PORT: String(pod.appPort),
    BIND_ADDRESS: '127.0.0.1',
    HTTP_PROXY: proxy,
    http_proxy: proxy,
    NO_PROXY: 'localhost,127.0.0.1',
    no_proxy: 'localhost,127.0.0.1',
  });
  return env;
}
