/**
 * Whether a pod is injected at all. Pure predicates over the pod and its namespace; each "no" carries a
 * stable reason code (Linkerd-style) that the webhook turns into events/metrics and the CLI into a message.
 */
import { ANNOTATIONS, IGNORED_NAMESPACES, LABELS } from './constants.js';
import type { InjectContext, Pod, SkipReason } from './types.js';

export interface Skip {
  reason: SkipReason;
  message: string;
}

/** Pod-level decision; `namespace` is the pod's effective namespace ('' when unknown, e.g. kube-inject). */
export function skipReason(
  pod: Pod,
  namespace: string,
  ctx: InjectContext,
  warnings: string[],
): Skip | undefined {
  // iptables in a host-network pod would rewrite the node's own rules.
  if (pod.spec?.hostNetwork) return { reason: 'host-network', message: 'pod uses the host network' };
  if (namespace !== '' && namespace === ctx.controlPlaneNamespace) {
    return { reason: 'control-plane-namespace', message: `namespace ${namespace} is the control plane's` };
  }
  if (IGNORED_NAMESPACES.includes(namespace)) {
    return { reason: 'ignored-namespace', message: `namespace ${namespace} is never injected` };
  }
  const choice = injectChoice(pod, warnings);
  if (choice === false) {
    return { reason: 'opted-out', message: `pod sets ${LABELS.inject}: "false"` };
  }
  return undefined;
}

/**
 * The pod's own choice: the label (current API) wins over the annotation (legacy). Anything but
 * "true"/"false" falls back to the namespace default with a warning, as Istio does.
 */
export function injectChoice(pod: Pod, warnings: string[]): boolean | undefined {
  const label = pod.metadata?.labels?.[LABELS.inject];
  const value = label ?? pod.metadata?.annotations?.[ANNOTATIONS.inject];
  if (value === undefined || value === '') return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  warnings.push(`${LABELS.inject}="${value}" is neither "true" nor "false"; using the namespace default`);
  return undefined;
}

/**
 * Namespace-level decision for the webhook when the namespace labels are known: `istio-injection=disabled`
 * always wins; otherwise the namespace must be enabled or the pod must ask with `sidecar.istio.io/inject: "true"`.
 */
export function namespaceSkip(
  pod: Pod,
  namespaceLabels: Record<string, string> | undefined,
): Skip | undefined {
  if (!namespaceLabels) return undefined;
  const mode = namespaceLabels[LABELS.namespaceInjection];
  if (mode === 'disabled') {
    return {
      reason: 'namespace-not-enabled',
      message: `namespace has ${LABELS.namespaceInjection}=disabled`,
    };
  }
  if (mode === 'enabled' || injectChoice(pod, []) === true) return undefined;
  return { reason: 'namespace-not-enabled', message: `namespace lacks ${LABELS.namespaceInjection}=enabled` };
}
