/**
 * Sidecar injection as one pure function, in Istio's order: decide, strip a previous injection (so
 * re-injection is stable), read and validate the pod's settings, render the template, place what it
 * produced, rewrite probes, then write the metadata that records what was done.
 */
import { isDeepStrictEqual } from 'node:util';
import type { V1Container } from '@kubernetes/client-node';
import { ANNOTATIONS, INIT_CONTAINER_NAME, LABELS, PROXY_CONTAINER_NAME } from './constants.js';
import { applyContainerOverride } from './overrides.js';
import { skipReason } from './policy.js';
import { appProbersEnv, rewriteAppProbes } from './probes.js';
import { type InjectionSettings, inboundExclusions, readSettings } from './settings.js';
import { type InjectionStatus, stripInjection } from './strip.js';
import { isRecord, loadSidecarTemplate, renderTemplate, TemplateError } from './template.js';
import type { InjectContext, InjectResult, InjectTarget, Pod, WorkloadMeta } from './types.js';
import { templateValues, workloadOf } from './values.js';

/**
 * Injects the sidecar into `pod` (never modified). Returns the injected pod, a skip with a reason code,
 * or errors naming each bad annotation and value. Injecting an injected pod again returns
 * `already-injected` when nothing would change.
 */
export function injectPod(pod: Pod, ctx: InjectContext, target: InjectTarget = {}): InjectResult {
  const warnings: string[] = [];
  const namespace = pod.metadata?.namespace || target.namespace || '';
  const skip = skipReason(pod, namespace, ctx, warnings);
  if (skip) return { kind: 'skipped', ...skip, warnings };

  let template: NonNullable<InjectContext['template']>;
  try {
    template = ctx.template ?? loadSidecarTemplate();
  } catch (err) {
    return templateFailure(err);
  }
  const { pod: stripped } = stripInjection(pod, template);

  // A user-written istio-proxy container is a customisation of the injected one, not a container.
  const override = stripped.spec?.containers.find((c) => c.name === PROXY_CONTAINER_NAME);
  if (override && stripped.spec) {
    stripped.spec.containers = stripped.spec.containers.filter((c) => c !== override);
  }

  const { settings, errors, warnings: settingWarnings } = readSettings(stripped, ctx);
  warnings.push(...settingWarnings);
  if (!settings) {
    return { kind: 'error', errors, message: `cannot inject: ${errors.map((e) => e.message).join('; ')}` };
  }

  const workload = target.workload ?? workloadOf(pod);
  let rendered: Record<string, unknown>;
  try {
    rendered = renderTemplate(
      template,
      templateValues(stripped, settings, ctx, namespace || 'default', workload),
    );
  } catch (err) {
    return templateFailure(err);
  }

  const out = structuredClone(stripped);
  const status = place(out, rendered, settings, override);
  if (status instanceof Error) return templateFailure(status);

  if (settings.rewriteProbes) {
    const { probers, warnings: probeWarnings } = rewriteAppProbes(out);
    warnings.push(...probeWarnings);
    if (Object.keys(probers).length > 0) findProxy(out)?.env?.push(appProbersEnv(probers));
  }
  shareServiceAccountToken(out);
  writeMetadata(out, settings, status, ctx, workload, override);
  warnings.push(...jobWarnings(settings, workload));

  if (isDeepStrictEqual(out, pod)) {
    return { kind: 'skipped', reason: 'already-injected', message: 'pod is already injected', warnings };
  }
  return { kind: 'injected', pod: out, warnings };
}

function templateFailure(err: unknown): InjectResult {
  const message = err instanceof Error ? err.message : String(err);
  if (!(err instanceof TemplateError)) throw err;
  return { kind: 'error', errors: [{ field: 'sidecar template', value: '', message }], message };
}

/** Where Kubernetes mounts the pod's service-account token (and the apiserver CA). */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The agent reads its published config from the API with the pod's service-account token. The
 * ServiceAccount admission plugin mounts that token only into containers that exist when it runs,
 * which is before mutating webhooks, so the proxy gets the app's mount (when the pod has one).
 */
function shareServiceAccountToken(pod: Pod): void {
  const proxy = findProxy(pod);
  if (!proxy || proxy.volumeMounts?.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) return;
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    if (c === proxy) continue;
    const mount = c.volumeMounts?.find((m) => m.mountPath === SERVICE_ACCOUNT_DIR);
    if (mount) {
      proxy.volumeMounts = [
        ...(proxy.volumeMounts ?? []),
        { name: mount.name, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
      ];
      return;
    }
  }
}

function findProxy(pod: Pod): V1Container | undefined {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find(
    (c) => c.name === PROXY_CONTAINER_NAME,
  );
}

/**
 * Puts the rendered containers and volumes into the pod, in Istio's order: without native sidecars the
 * iptables init container runs last (earlier init containers keep unrestricted network) and the proxy is
 * the last container, or the first when the app must wait for it; with native sidecars istio-init and the
 * proxy come first among the init containers, so later init containers already have a running proxy.
 */
function place(
  pod: Pod,
  rendered: Record<string, unknown>,
  settings: InjectionSettings,
  override: V1Container | undefined,
): InjectionStatus | Error {
  const list = (key: string): V1Container[] => {
    const v = rendered[key];
    return Array.isArray(v) ? (v.filter(isRecord) as unknown as V1Container[]) : [];
  };
  // NONE: the proxy runs but nothing is captured, so there is nothing for istio-init to do.
  const inits = list('initContainers').filter(
    (c) => settings.interceptionMode !== 'NONE' || c.name !== INIT_CONTAINER_NAME,
  );
  let containers = list('containers');
  const volumes = Array.isArray(rendered.volumes)
    ? (rendered.volumes as NonNullable<typeof pod.spec>['volumes'])
    : [];
  let proxy = containers.find((c) => c.name === PROXY_CONTAINER_NAME);
  if (!proxy) return new TemplateError(`sidecar template has no container named ${PROXY_CONTAINER_NAME}`);
  containers = containers.filter((c) => c !== proxy);
  if (override) proxy = applyContainerOverride(proxy, override);
  for (const [k, v] of Object.entries(settings.proxyMetadata)) {
    proxy.env = [...(proxy.env ?? []).filter((e) => e.name !== k), { name: k, value: v }];
  }

  const spec = pod.spec ?? { containers: [] };
  pod.spec = spec;
  const taken = new Set([...spec.containers, ...(spec.initContainers ?? [])].map((c) => c.name));
  for (const c of [...inits, proxy, ...containers]) {
    if (taken.has(c.name)) return new TemplateError(`container name ${c.name} is already used by the pod`);
  }
  const volumeNames = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const v of volumes ?? []) {
    if (volumeNames.has(v.name)) return new TemplateError(`volume name ${v.name} is already used by the pod`);
  }

  const userInits = spec.initContainers ?? [];
  if (settings.nativeSidecar) {
    spec.initContainers = [...inits, proxy, ...userInits];
  } else {
    spec.initContainers = [...userInits, ...inits];
    if (spec.initContainers.length === 0) delete spec.initContainers;
  }
  const apps = spec.containers;
  if (settings.nativeSidecar) spec.containers = [...apps, ...containers];
  else if (settings.holdApplicationUntilProxyStarts) spec.containers = [proxy, ...apps, ...containers];
  else spec.containers = [...apps, ...containers, proxy];
  if (volumes && volumes.length > 0) spec.volumes = [...(spec.volumes ?? []), ...volumes];

  const names = (cs: V1Container[]) => (cs.length > 0 ? cs.map((c) => c.name) : null);
  return {
    initContainers: names(settings.nativeSidecar ? [...inits, proxy] : inits),
    containers: names(settings.nativeSidecar ? containers : [proxy, ...containers]),
    volumes: volumes && volumes.length > 0 ? volumes.map((v) => v.name) : null,
    imagePullSecrets: null,
    revision: '',
  };
}

/** Labels and annotations recording the injection and the traffic settings the init container applied. */
function writeMetadata(
  pod: Pod,
  settings: InjectionSettings,
  status: InjectionStatus,
  ctx: InjectContext,
  workload: WorkloadMeta,
  override: V1Container | undefined,
): void {
  pod.metadata ??= {};
  pod.metadata.labels ??= {};
  pod.metadata.annotations ??= {};
  const { labels, annotations } = pod.metadata;

  // Existing values win, so an app's own choices (and a previous injection) are kept.
  labels[LABELS.tlsMode] ??= 'istio';
  labels[LABELS.canonicalName] ??= labels['app.kubernetes.io/name'] ?? labels.app ?? workload.name;
  labels[LABELS.canonicalRevision] ??= labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';

  annotations[ANNOTATIONS.interceptionMode] = settings.interceptionMode;
  annotations[ANNOTATIONS.includeInboundPorts] = settings.includeInboundPorts;
  // Istio records the status port plus the pod's own exclusions (metrics/health are implied).
  annotations[ANNOTATIONS.excludeInboundPorts] = inboundExclusions(settings.excludeInboundPorts)
    .slice(2)
    .join(',');
  annotations[ANNOTATIONS.includeOutboundIPRanges] = settings.includeOutboundIPRanges;
  if (settings.excludeOutboundIPRanges) {
    annotations[ANNOTATIONS.excludeOutboundIPRanges] = settings.excludeOutboundIPRanges;
  }
  if (settings.excludeOutboundPorts)
    annotations[ANNOTATIONS.excludeOutboundPorts] = settings.excludeOutboundPorts;
  if (override) annotations[ANNOTATIONS.proxyOverrides] = JSON.stringify({ containers: [override] });
  annotations[ANNOTATIONS.status] = JSON.stringify({ ...status, revision: ctx.revision });
}

/**
 * A regular proxy container keeps a Job's pod running after the app exits; native sidecars do not have
 * that problem. Without them the app has to tell the agent to exit.
 */
function jobWarnings(settings: InjectionSettings, workload: WorkloadMeta): string[] {
  if (settings.nativeSidecar || (workload.kind !== 'Job' && workload.kind !== 'CronJob')) return [];
  return [
    `${workload.kind} ${workload.name}: the cluster has no native sidecars, so the proxy is a regular container; ` +
      'the app must POST http://localhost:15020/quitquitquit when done or the Job never completes',
  ];
}
