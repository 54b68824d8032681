/**
 * Removes a previous injection so that injecting again yields the same pod (Istio's approach): the
 * containers, init containers, volumes and pull secrets named in `sidecar.istio.io/status` go, rewritten
 * probes get their originals back, and a user's `istio-proxy` customisation saved at the first injection is
 * put back where the user wrote it.
 */
import type { V1Container } from '@kubernetes/client-node';
import { ANNOTATIONS, PROXY_CONTAINER_NAME } from './constants.js';
import { readAppProbers, restoreAppProbes } from './probes.js';
import { isRecord, type SidecarTemplate } from './template.js';
import type { Pod } from './types.js';

/** Shape of `sidecar.istio.io/status` (Istio's field names and order). */
export interface InjectionStatus {
  initContainers: string[] | null;
  containers: string[] | null;
  volumes: string[] | null;
  imagePullSecrets: string[] | null;
  revision: string;
}

export interface StripResult {
  pod: Pod;
  /** True when the pod carried a status annotation. */
  wasInjected: boolean;
}

/** Strips a previous injection from a copy of `pod`; the input is not modified. */
export function stripInjection(pod: Pod, template: SidecarTemplate): StripResult {
  const out = structuredClone(pod);
  const annotations = out.metadata?.annotations;
  const raw = annotations?.[ANNOTATIONS.status];
  if (raw === undefined || !out.metadata || !annotations) return { pod: out, wasInjected: false };

  const status = parseStatus(raw) ?? statusFromTemplate(template);
  const spec = out.spec ?? { containers: [] };
  const oldProxy = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].find(
    (c) => c.name === PROXY_CONTAINER_NAME,
  );
  const probers = readAppProbers(oldProxy);

  const drop = (names: string[] | null) => (c: { name: string }) => !(names ?? []).includes(c.name);
  const injected = [...(status.containers ?? []), ...(status.initContainers ?? [])];
  spec.containers = (spec.containers ?? []).filter(drop(injected));
  if (spec.initContainers) spec.initContainers = spec.initContainers.filter(drop(injected));
  if (spec.volumes) spec.volumes = spec.volumes.filter(drop(status.volumes));
  if (spec.imagePullSecrets) {
    const secrets = status.imagePullSecrets ?? [];
    spec.imagePullSecrets = spec.imagePullSecrets.filter((s) => !secrets.includes(s.name ?? ''));
  }
  restoreAppProbes(out, probers);
  reinsertOverrides(out);
  delete annotations[ANNOTATIONS.status];
  dropEmpty(out, spec);
  return { pod: out, wasInjected: true };
}

export function parseStatus(raw: string): InjectionStatus | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    if (!isRecord(v)) return undefined;
    const list = (x: unknown): string[] | null =>
      Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : null;
    return {
      initContainers: list(v.initContainers),
      containers: list(v.containers),
      volumes: list(v.volumes),
      imagePullSecrets: list(v.imagePullSecrets),
      revision: typeof v.revision === 'string' ? v.revision : '',
    };
  } catch {
    return undefined;
  }
}

/** An unreadable status annotation still means "injected": strip whatever the template would have added. */
function statusFromTemplate(template: SidecarTemplate): InjectionStatus {
  const names = (key: string): string[] => {
    const list = template.root[key];
    return Array.isArray(list) ? list.filter(isRecord).map((c) => String(c.name)) : [];
  };
  return {
    initContainers: [...names('initContainers'), PROXY_CONTAINER_NAME],
    containers: names('containers'),
    volumes: names('volumes'),
    imagePullSecrets: null,
    revision: '',
  };
}

/** Puts the user's `istio-proxy` customisation (saved at first injection) back among the containers. */
function reinsertOverrides(pod: Pod): void {
  const raw = pod.metadata?.annotations?.[ANNOTATIONS.proxyOverrides];
  if (raw === undefined || !pod.spec) return;
  delete pod.metadata!.annotations![ANNOTATIONS.proxyOverrides];
  try {
    const v: unknown = JSON.parse(raw);
    const containers = isRecord(v) && Array.isArray(v.containers) ? v.containers : [];
    for (const c of containers) {
      if (isRecord(c) && c.name === PROXY_CONTAINER_NAME)
        pod.spec.containers.push(c as unknown as V1Container);
    }
  } catch {
    // A corrupt overrides annotation only loses the customisation; injection itself still works.
  }
}

/** Removes lists/maps the injection created, so strip(inject(p)) has the shape of p. */
function dropEmpty(pod: Pod, spec: NonNullable<Pod['spec']>): void {
  if (spec.initContainers?.length === 0) delete spec.initContainers;
  if (spec.volumes?.length === 0) delete spec.volumes;
  if (spec.imagePullSecrets?.length === 0) delete spec.imagePullSecrets;
  if (pod.metadata?.annotations && Object.keys(pod.metadata.annotations).length === 0) {
    delete pod.metadata.annotations;
  }
}
