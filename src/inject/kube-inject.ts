/**
 * `kube-inject` as a pure function over multi-document YAML text: the pod templates of workload kinds are
 * injected exactly as the webhook would inject their pods; other kinds, skipped pods and already injected
 * documents are copied through byte for byte.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { injectPod } from './inject.js';
import { isRecord } from './template.js';
import type { InjectContext, Pod } from './types.js';

/** Bad input: names the source and the 1-based document index. */
export class KubeInjectError extends Error {
  override readonly name = 'KubeInjectError';
}

export interface KubeInjectResult {
  output: string;
  /** Skips and advice, one line each, e.g. `deploy.yaml: document 2: Deployment web: skipped (host-network) ...`. */
  warnings: string[];
}

/** Kinds whose pod template is at spec.template. */
const TEMPLATE_KINDS = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'ReplicationController',
]);

export function kubeInject(text: string, ctx: InjectContext, source = '<stdin>'): KubeInjectResult {
  const warnings: string[] = [];
  const docs = parseAllDocuments(text);
  let output = '';
  let prevEnd = 0;
  docs.forEach((doc, i) => {
    const where = `${source}: document ${i + 1}`;
    if (doc.errors.length > 0) {
      throw new KubeInjectError(`${where}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    }
    const end = doc.range[2];
    const original = text.slice(prevEnd, end);
    prevEnd = end;
    const value: unknown = doc.toJS();
    const injected = isRecord(value) ? injectObject(value, ctx, where, warnings) : value;
    if (isDeepStrictEqual(injected, value)) {
      output += original.endsWith('\n') || original === '' ? original : `${original}\n`;
      return;
    }
    output += `${i > 0 ? '---\n' : ''}${stringify(injected, { lineWidth: 0 })}`;
  });
  return { output, warnings };
}

/** Returns an injected copy of one manifest object (or the object itself when nothing applies). */
function injectObject(
  obj: Record<string, unknown>,
  ctx: InjectContext,
  where: string,
  warnings: string[],
): Record<string, unknown> {
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  if (kind === 'List' && Array.isArray(obj.items)) {
    return {
      ...obj,
      items: obj.items.map((item, j) =>
        isRecord(item) ? injectObject(item, ctx, `${where} item ${j + 1}`, warnings) : item,
      ),
    };
  }
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : '';
  const label = `${where}: ${kind} ${name || '(unnamed)'}`;
  const workload = { name, kind, apiVersion: typeof obj.apiVersion === 'string' ? obj.apiVersion : '' };

  if (kind === 'Pod') {
    const pod = injectOne(obj as Pod, ctx, namespace, undefined, label, warnings);
    return pod as unknown as Record<string, unknown>;
  }
  const template = podTemplateOf(obj, kind);
  if (!template) return obj;
  const pod = { metadata: template.metadata ?? {}, spec: template.spec } as Pod;
  const injected = injectOne(pod, ctx, namespace, workload, label, warnings);
  if (injected === pod) return obj;
  const out = structuredClone(obj);
  const target = podTemplateOf(out, kind)!;
  target.metadata = injected.metadata;
  target.spec = injected.spec;
  return out;
}

function injectOne(
  pod: Pod,
  ctx: InjectContext,
  namespace: string,
  workload: { name: string; kind: string; apiVersion: string } | undefined,
  label: string,
  warnings: string[],
): Pod {
  const result = injectPod(pod, ctx, { namespace, ...(workload && { workload }) });
  if (result.kind === 'error') throw new KubeInjectError(`${label}: ${result.message}`);
  for (const w of result.warnings) warnings.push(`${label}: ${w}`);
  if (result.kind === 'skipped') {
    if (result.reason !== 'already-injected')
      warnings.push(`${label}: skipped (${result.reason}): ${result.message}`);
    return pod;
  }
  return result.pod;
}

interface PodTemplate {
  metadata?: Pod['metadata'];
  spec?: Pod['spec'];
}

function podTemplateOf(obj: Record<string, unknown>, kind: string): PodTemplate | undefined {
  const spec = isRecord(obj.spec) ? obj.spec : undefined;
  if (!spec) return undefined;
  if (TEMPLATE_KINDS.has(kind)) return isRecord(spec.template) ? (spec.template as PodTemplate) : undefined;
  if (kind === 'CronJob') {
    const jobSpec =
      isRecord(spec.jobTemplate) && isRecord(spec.jobTemplate.spec) ? spec.jobTemplate.spec : undefined;
    return jobSpec && isRecord(jobSpec.template) ? (jobSpec.template as PodTemplate) : undefined;
  }
  return undefined;
}
