/**
 * Defensive readers for plain Kubernetes objects (parsed YAML or API responses). Inputs are
 * untrusted shapes: every accessor tolerates missing or mistyped fields.
 */
export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(v)) return out;
  for (const k of Object.keys(v).sort()) {
    const val = v[k];
    if (typeof val === 'string') out[k] = val;
    else if (typeof val === 'number' || typeof val === 'boolean') out[k] = String(val);
  }
  return out;
}

export interface Meta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  creationTimestamp?: string;
  ownerReferences: Obj[];
}

export function metaOf(o: Obj, defaultNamespace = 'default'): Meta {
  const m = obj(o.metadata);
  const ts = m.creationTimestamp;
  return {
    name: str(m.name) ?? '',
    namespace: str(m.namespace) ?? defaultNamespace,
    labels: strMap(m.labels),
    annotations: strMap(m.annotations),
    ...(typeof ts === 'string'
      ? { creationTimestamp: ts }
      : ts instanceof Date
        ? { creationTimestamp: ts.toISOString() }
        : {}),
    ownerReferences: arr(m.ownerReferences).filter(isObj),
  };
}

/** `selector` is a subset of `labels` (an empty selector selects everything). */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}
