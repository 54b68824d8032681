/**
 * What `isthmus up` runs, read from the example's Kubernetes manifests (`<dir>/k8s/`):
 * Deployments (StatefulSets, DaemonSets) become local workloads (labels, service account,
 * replicas, the first container's command and env); Services and any Istio objects there feed
 * the mesh snapshot. Pods and EndpointSlices are made up by `up` itself (see pods.ts).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { loadDocuments } from '../cli/documents.js';
import { acceptDocuments } from '../config-source/index.js';
import { arr, isObj, metaOf, num, type Obj, obj, selects, str, strMap } from '../registry/kube-objects.js';
import type { WorkloadIdentity } from '../registry/types.js';

export interface EnvVar {
  name: string;
  value?: string;
  /** `fieldRef.fieldPath` of a `valueFrom` (metadata.name, metadata.namespace, status.podIP...). */
  fieldPath?: string;
}

export interface LocalWorkload {
  identity: WorkloadIdentity;
  kind: string;
  replicas: number;
  containerName: string;
  /** argv: a script run with this Node (`args: ["details.mjs"]`) or the container's command. */
  argv: string[];
  env: EnvVar[];
  /** Target ports of the Services selecting this workload: the ports its sidecar serves inbound. */
  inboundPorts: number[];
}

export interface LocalManifests {
  /** Services, ServiceEntries and Istio config from the manifests (validated). */
  objects: unknown[];
  workloads: LocalWorkload[];
  /** Things skipped, one line each. */
  warnings: string[];
}

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const SNAPSHOT_KINDS = new Set(['Service']);
const SCRIPT = /\.(mjs|cjs|js)$/;
const MAX_REPLICAS = 10;

function isMeshGroup(apiVersion: unknown): boolean {
  return typeof apiVersion === 'string' && /^(networking|security)\.istio\.io\//.test(apiVersion);
}

/** Where the manifests are: `<dir>/k8s` when it exists, else `<dir>` itself (top level). */
export function manifestsPath(dir: string): string {
  const k8s = resolve(dir, 'k8s');
  return existsSync(k8s) ? k8s : dir;
}

function argvOf(c: Obj, dir: string, what: string): string[] {
  const command = arr(c.command).map(String);
  const args = arr(c.args).map(String);
  if (command.length > 0) {
    const [first, ...rest] = command;
    return [first === 'node' ? process.execPath : first!, ...rest, ...args];
  }
  const script = args[0];
  if (script && SCRIPT.test(script))
    return [process.execPath, isAbsolute(script) ? script : resolve(dir, script), ...args.slice(1)];
  throw new Error(
    `${what}: cannot tell how to run it locally: give the container a \`command\` or a script in \`args\``,
  );
}

function envOf(c: Obj): EnvVar[] {
  const out: EnvVar[] = [];
  for (const e of arr(c.env)) {
    const name = str(obj(e).name);
    if (!name) continue;
    const value = obj(e).value;
    const fieldPath = str(obj(obj(obj(e).valueFrom).fieldRef).fieldPath);
    if (typeof value === 'string' || typeof value === 'number') out.push({ name, value: String(value) });
    else if (fieldPath) out.push({ name, fieldPath });
    else out.push({ name, value: '' });
  }
  return out;
}

/** Target ports (numbers) of the Services in `namespace` that select `labels`. */
function inboundPorts(services: Obj[], namespace: string, labels: Record<string, string>, c: Obj): number[] {
  const named = new Map<string, number>();
  for (const p of arr(c.ports)) {
    const name = str(obj(p).name);
    const port = num(obj(p).containerPort);
    if (name && port !== undefined) named.set(name, port);
  }
  const ports = new Set<number>();
  for (const s of services) {
    const meta = metaOf(s);
    const selector = strMap(obj(s.spec).selector);
    if (meta.namespace !== namespace || Object.keys(selector).length === 0 || !selects(selector, labels))
      continue;
    for (const p of arr(obj(s.spec).ports)) {
      const port = num(obj(p).port);
      const target = obj(p).targetPort;
      const n = typeof target === 'number' ? target : typeof target === 'string' ? named.get(target) : port;
      if (n !== undefined && obj(p).protocol !== 'UDP') ports.add(n);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

function workloadOf(o: Obj, services: Obj[], dir: string, namespace: string): LocalWorkload {
  const meta = metaOf(o, namespace);
  const kind = String(o.kind);
  const what = `${kind} ${meta.namespace}/${meta.name}`;
  const spec = obj(o.spec);
  const template = obj(spec.template);
  const labels = strMap(obj(template.metadata).labels);
  const podSpec = obj(template.spec);
  const container = obj(arr(podSpec.containers)[0]);
  if (!isObj(arr(podSpec.containers)[0])) throw new Error(`${what}: no containers`);
  const replicas = kind === 'Deployment' || kind === 'StatefulSet' ? (num(spec.replicas) ?? 1) : 1;
  return {
    identity: {
      name: meta.name,
      namespace: meta.namespace,
      labels,
      serviceAccount: str(podSpec.serviceAccountName) ?? str(podSpec.serviceAccount) ?? 'default',
    },
    kind,
    replicas: Math.max(0, Math.min(MAX_REPLICAS, Math.floor(replicas))),
    containerName: str(container.name) ?? meta.name,
    argv: argvOf(container, dir, what),
    env: envOf(container),
    inboundPorts: inboundPorts(services, meta.namespace, labels, container),
  };
}

/**
 * Reads the manifests under `path`; scripts named in `args` resolve against `appDir` (the
 * image's working directory is the example directory). Throws when nothing can be run.
 */
export function readManifests(path: string, appDir: string, namespace = 'default'): LocalManifests {
  const loaded = loadDocuments([path]);
  const warnings = [...loaded.errors];
  const objects: unknown[] = [];
  const workloads: LocalWorkload[] = [];
  const kube: Obj[] = [];
  const mesh: Array<{ source: string; object: unknown }> = [];
  for (const d of loaded.docs) {
    if (!isObj(d.object)) continue;
    const o = d.object;
    // Namespace-less manifests land in `namespace` (what `kubectl apply -n` would do).
    const m = obj(o.metadata);
    const placed = str(m.namespace) ? o : { ...o, metadata: { ...m, namespace } };
    if (isMeshGroup(o.apiVersion)) mesh.push({ source: d.source, object: placed });
    else if (o.apiVersion === 'v1' && SNAPSHOT_KINDS.has(String(o.kind))) kube.push(placed);
  }
  const services = kube.filter((o) => o.kind === 'Service');
  objects.push(...kube);
  const accepted = acceptDocuments(mesh, new Map());
  objects.push(...accepted.objects);
  for (const r of accepted.rejected) warnings.push(`${r.source}: ${r.messages.join('; ')}`);
  for (const d of loaded.docs) {
    if (!isObj(d.object) || !WORKLOAD_KINDS.has(String(d.object.kind))) continue;
    workloads.push(workloadOf(d.object, services, appDir, namespace));
  }
  if (workloads.length === 0)
    throw new Error(`${path}: no Deployments found (isthmus up runs the workloads of Kubernetes manifests)`);
  return { objects, workloads, warnings };
}
