/** Small helpers over @kubernetes/client-node shared by the controller's parts. */
import { KubeConfig } from '@kubernetes/client-node';

/** True when `err` is an API error with the given HTTP status (client-node 1.x ApiException). */
export function isApiError(err: unknown, code: number): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** A readable one-line description of an API error (never `{}` from JSON.stringify(error)). */
export function describeApiError(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const e = err as { code?: number; body?: unknown; message?: string };
    let msg = e.message ?? '';
    const body = typeof e.body === 'string' ? safeJson(e.body) : e.body;
    if (body && typeof body === 'object' && 'message' in body)
      msg = String((body as { message: unknown }).message);
    return `HTTP ${e.code}: ${msg}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** Kubeconfig from a file, else in-cluster, else the default locations. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}
