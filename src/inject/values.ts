/**
 * The named values the sidecar template is rendered with (`SidecarTemplateData` in Istio). Everything the
 * template may reference is listed here; a name missing from this object fails the render.
 */
import {
  INIT_CONTAINER_NAME,
  PORTS,
  PROXY_CONTAINER_NAME,
  PROXY_GID,
  PROXY_UID,
  TOKEN_AUDIENCE,
  TOKEN_EXPIRATION_SECONDS,
} from './constants.js';
import { appContainers, type InjectionSettings, inboundExclusions } from './settings.js';
import type { InjectContext, Pod, WorkloadMeta } from './types.js';

/** Command of the postStart hook that holds app containers until the proxy reports ready. */
export const WAIT_COMMAND = ['isthmus', 'wait', `--url=http://localhost:${PORTS.health}/healthz/ready`];

export function templateValues(
  pod: Pod,
  settings: InjectionSettings,
  ctx: InjectContext,
  namespace: string,
  workload: WorkloadMeta,
): Record<string, unknown> {
  const tproxy = settings.interceptionMode === 'TPROXY';
  const apps = appContainers(pod);
  const podPorts = apps.flatMap((c) => c.ports ?? []);
  return {
    ports: { ...PORTS },
    proxyUID: PROXY_UID,
    proxyGID: PROXY_GID,
    proxyImage: settings.proxyImage,
    imagePullPolicy: ctx.imagePullPolicy,
    interceptionMode: settings.interceptionMode,
    includeOutboundIPRanges: settings.includeOutboundIPRanges,
    excludeOutboundIPRanges: settings.excludeOutboundIPRanges,
    includeInboundPorts: settings.includeInboundPorts,
    excludeInboundPorts: inboundExclusions(settings.excludeInboundPorts).join(','),
    // Istio passes -o only when there is something to exclude.
    excludeOutboundPortsArgs: settings.excludeOutboundPorts ? ['-o', settings.excludeOutboundPorts] : [],
    initResources: structuredClone(ctx.initResources),
    proxyResources: structuredClone(settings.proxyResources),
    nativeRestartPolicy: settings.nativeSidecar ? 'Always' : null,
    // Native sidecars already start (and pass their startup probe) before the app; the hook is only
    // needed for a regular container, which kubelet starts in order and waits on its postStart.
    proxyLifecycle:
      settings.holdApplicationUntilProxyStarts && !settings.nativeSidecar
        ? { postStart: { exec: { command: [...WAIT_COMMAND] } } }
        : null,
    // TPROXY needs the proxy to set IP_TRANSPARENT: root with NET_ADMIN, as Istio runs it.
    proxyCapabilitiesAdd: tproxy ? ['NET_ADMIN'] : null,
    proxyRunAsUser: tproxy ? 0 : PROXY_UID,
    proxyRunAsNonRoot: !tproxy,
    logLevel: settings.logLevel,
    clusterDomain: ctx.clusterDomain,
    clusterId: ctx.clusterId,
    trustDomain: ctx.trustDomain,
    caAddress: ctx.caAddress,
    proxyConfig: settings.proxyConfig,
    podPorts,
    appContainers: apps.map((c) => c.name).join(','),
    workloadName: workload.name,
    owner: ownerUri(workload, namespace),
    tokenAudience: TOKEN_AUDIENCE,
    tokenExpirationSeconds: TOKEN_EXPIRATION_SECONDS,
    initContainerName: INIT_CONTAINER_NAME,
    proxyContainerName: PROXY_CONTAINER_NAME,
  };
}

/** `kubernetes://apis/apps/v1/namespaces/shop/deployments/reviews`, the form Istio's agent reports. */
export function ownerUri(w: WorkloadMeta, namespace: string): string {
  return `kubernetes://apis/${w.apiVersion}/namespaces/${namespace}/${w.kind.toLowerCase()}s/${w.name}`;
}

/**
 * The workload a pod belongs to, from its controller owner reference: a ReplicaSet named
 * `<deployment>-<pod-template-hash>` belongs to that Deployment. Bare pods are their own workload.
 */
export function workloadOf(pod: Pod): WorkloadMeta {
  const meta = pod.metadata ?? {};
  const owner = meta.ownerReferences?.find((o) => o.controller) ?? meta.ownerReferences?.[0];
  if (owner) {
    const hash = meta.labels?.['pod-template-hash'];
    if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) {
      return { name: owner.name.slice(0, -(hash.length + 1)), kind: 'Deployment', apiVersion: 'apps/v1' };
    }
    return { name: owner.name, kind: owner.kind, apiVersion: owner.apiVersion };
  }
  const name = meta.name ?? meta.generateName?.replace(/-$/, '') ?? 'unknown';
  return { name, kind: 'Pod', apiVersion: 'v1' };
}
