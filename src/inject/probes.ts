/**
 * App probe rewriting. Under STRICT mTLS kubelet's plain-HTTP probes would be captured and rejected by the
 * proxy, so HTTP liveness/readiness/startup probes are pointed at the agent on the status port
 * (`/app-health/<container>/{livez,readyz,startupz}`); the agent calls the app with the original settings,
 * which it reads from the proxy's ISTIO_KUBE_APP_PROBERS env var (Istio's format:
 * `{"/app-health/web/readyz": {"httpGet": {...}, "timeoutSeconds": 1}}`).
 */
import type { V1Container, V1EnvVar, V1HTTPGetAction, V1Probe } from '@kubernetes/client-node';
import {
  APP_HEALTH_PREFIX,
  KUBE_APP_PROBERS_ENV,
  PORTS,
  PROBE_SUFFIX,
  PROXY_CONTAINER_NAME,
} from './constants.js';
import { isRecord } from './template.js';
import type { Pod } from './types.js';

export interface Prober {
  httpGet: V1HTTPGetAction;
  timeoutSeconds?: number;
}
export type AppProbers = Record<string, Prober>;

type ProbeKind = keyof typeof PROBE_SUFFIX;
const KINDS = Object.keys(PROBE_SUFFIX) as ProbeKind[];

export function probePath(container: string, kind: ProbeKind): string {
  return `${APP_HEALTH_PREFIX}${container}/${PROBE_SUFFIX[kind]}`;
}

/** Containers whose probes may be rewritten: app containers and native-sidecar-style init containers. */
function probedContainers(pod: Pod): V1Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].filter(
    (c) => c.name !== PROXY_CONTAINER_NAME,
  );
}

/**
 * Rewrites the pod's HTTP probes in place and returns the originals keyed by their new path, or warnings
 * for probes left alone (a named port the container does not declare cannot be resolved for the agent).
 */
export function rewriteAppProbes(pod: Pod): { probers: AppProbers; warnings: string[] } {
  const probers: AppProbers = {};
  const warnings: string[] = [];
  for (const c of probedContainers(pod)) {
    for (const kind of KINDS) {
      const probe: V1Probe | undefined = c[kind];
      if (!probe?.httpGet) continue;
      const port = resolvePort(c, probe.httpGet.port);
      if (port === undefined) {
        warnings.push(
          `${kind} of container "${c.name}" uses port "${probe.httpGet.port}" that the container does not declare; probe not rewritten`,
        );
        continue;
      }
      const path = probePath(c.name, kind);
      const original: Prober = { httpGet: { ...probe.httpGet, port } };
      if (probe.timeoutSeconds !== undefined) original.timeoutSeconds = probe.timeoutSeconds;
      probers[path] = original;
      // kubelet talks plain HTTP to the agent, which speaks HTTPS to the app when the original did.
      // `host` is dropped: the agent listens on the pod IP, not on whatever host the app probe named.
      const { host: _host, ...rest } = probe.httpGet;
      const rewritten: V1HTTPGetAction = { ...rest, path, port: PORTS.status };
      if (rewritten.scheme === 'HTTPS') rewritten.scheme = 'HTTP';
      c[kind] = { ...probe, httpGet: rewritten };
    }
  }
  return { probers, warnings };
}

function resolvePort(c: V1Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** The env var carrying the originals; keys sorted so re-injection renders byte-identical pods. */
export function appProbersEnv(probers: AppProbers): V1EnvVar {
  const sorted: AppProbers = {};
  for (const k of Object.keys(probers).sort()) sorted[k] = probers[k]!;
  return { name: KUBE_APP_PROBERS_ENV, value: JSON.stringify(sorted) };
}

/** Reads the originals recorded on a previously injected proxy container, if any. */
export function readAppProbers(proxy: V1Container | undefined): AppProbers {
  const raw = proxy?.env?.find((e) => e.name === KUBE_APP_PROBERS_ENV)?.value;
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!isRecord(parsed)) return {};
    const out: AppProbers = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (isRecord(v) && isRecord(v.httpGet)) out[k] = v as unknown as Prober;
    }
    return out;
  } catch {
    return {};
  }
}

/** Undoes a previous rewrite so re-injection starts from the app's own probes. */
export function restoreAppProbes(pod: Pod, probers: AppProbers): void {
  for (const c of probedContainers(pod)) {
    for (const kind of KINDS) {
      const probe = c[kind];
      const path = probePath(c.name, kind);
      const original = probers[path];
      if (!probe?.httpGet || !original || probe.httpGet.path !== path) continue;
      if (Number(probe.httpGet.port) !== PORTS.status) continue;
      const restored: V1Probe = { ...probe, httpGet: structuredClone(original.httpGet) };
      if (original.timeoutSeconds !== undefined) restored.timeoutSeconds = original.timeoutSeconds;
      c[kind] = restored;
    }
  }
}
