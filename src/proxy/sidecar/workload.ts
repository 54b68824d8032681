/**
 * The pod's own identity for metrics labels, from the env the injected container gets
 * (POD_NAME, POD_NAMESPACE, ISTIO_META_WORKLOAD_NAME, CANONICAL_SERVICE/REVISION, and the
 * pod labels in ISTIO_METAJSON_LABELS when present). Used until a config brings `node`.
 */
import type { Workload } from '../../tables/index.js';

export function workloadFromEnv(env: NodeJS.ProcessEnv): Workload {
  let labels: Record<string, string> = {};
  try {
    const parsed: unknown = env.ISTIO_METAJSON_LABELS ? JSON.parse(env.ISTIO_METAJSON_LABELS) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      labels = parsed as Record<string, string>;
  } catch {
    // malformed labels: fall back to the canonical service env vars
  }
  const w: Workload = {};
  const name = env.ISTIO_META_WORKLOAD_NAME || env.POD_NAME;
  if (name) w.name = name;
  if (env.POD_NAMESPACE) w.namespace = env.POD_NAMESPACE;
  const app = labels.app || labels['app.kubernetes.io/name'] || env.CANONICAL_SERVICE;
  if (app) w.app = app;
  const version = labels.version || labels['app.kubernetes.io/version'] || env.CANONICAL_REVISION;
  if (version) w.version = version;
  if (Object.keys(labels).length > 0) w.labels = labels;
  // Istio's locality override label: `region.zone.subzone` (labels cannot hold '/').
  const loc = labels['istio-locality'];
  if (loc) {
    const [region, zone, subzone] = loc.split('.');
    w.locality = {
      ...(region ? { region } : {}),
      ...(zone ? { zone } : {}),
      ...(subzone ? { subzone } : {}),
    };
  }
  return w;
}
