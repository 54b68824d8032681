/**
 * Injection customisation, as Istio supports it: a container named `istio-proxy` written in the pod spec is
 * not a second proxy but a patch over the injected one (e.g. different resources or an extra env var).
 * The patch is saved in `proxy.istio.io/overrides` so a later re-injection can apply it again.
 */
import type { V1Container } from '@kubernetes/client-node';
import { isRecord } from './template.js';

/** Lists of named entries merge by name; everything else in a list is replaced wholesale. */
const NAMED_LISTS = new Set(['env', 'volumeMounts', 'ports', 'volumeDevices']);

/** Overlays the user's container on the rendered one. `image: auto` means "keep the injected image". */
export function applyContainerOverride(base: V1Container, override: V1Container): V1Container {
  const patch: Record<string, unknown> = { ...override };
  delete patch.name;
  if (patch.image === 'auto') delete patch.image;
  return deepMerge(base as unknown as Record<string, unknown>, patch) as unknown as V1Container;
}

function deepMerge(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    if (NAMED_LISTS.has(k) && Array.isArray(cur) && Array.isArray(v)) out[k] = mergeByName(cur, v);
    else if (isRecord(cur) && isRecord(v)) out[k] = deepMerge(cur, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

function mergeByName(base: unknown[], patch: unknown[]): unknown[] {
  const key = (x: unknown) => (isRecord(x) ? (x.name ?? x.mountPath ?? x.containerPort) : undefined);
  const out = [...base];
  for (const item of patch) {
    const i = out.findIndex((b) => key(b) !== undefined && key(b) === key(item));
    if (i >= 0) out[i] = structuredClone(item);
    else out.push(structuredClone(item));
  }
  return out;
}
