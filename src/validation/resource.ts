/**
 * Validation of one Kubernetes object of a mesh kind: metadata, schema, then semantics.
 * Used identically by the validating webhook and `isthmus analyze`, so both give the same verdict.
 */
import { findKind } from '../api/kinds.js';
import { DEFAULT_ROOT_NAMESPACE } from '../api/mesh.js';
import { type Finding, Findings } from './findings.js';
import { isObject } from './kinds/common.js';
import { SEMANTIC_VALIDATORS } from './kinds/index.js';
import { checkDnsLabel } from './primitives.js';
import { checkSchema } from './schema.js';

export interface ResourceRef {
  kind: string;
  namespace: string;
  name: string;
}

export interface ResourceVerdict {
  ref: ResourceRef;
  /** False when the object is not a mesh kind (nothing was checked). */
  meshKind: boolean;
  findings: Finding[];
}

export interface ValidateOptions {
  /** Namespace assumed when the object has none (kubectl's current namespace). */
  defaultNamespace?: string;
  rootNamespace?: string;
}

export function refOf(obj: unknown, defaultNamespace = 'default'): ResourceRef {
  const o = isObject(obj) ? obj : {};
  const meta = isObject(o.metadata) ? o.metadata : {};
  return {
    kind: typeof o.kind === 'string' ? o.kind : '<unknown kind>',
    namespace: typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : defaultNamespace,
    name:
      typeof meta.name === 'string' && meta.name
        ? meta.name
        : typeof meta.generateName === 'string'
          ? `${meta.generateName}*`
          : '<unnamed>',
  };
}

export function validateResource(obj: unknown, opts: ValidateOptions = {}): ResourceVerdict {
  const ref = refOf(obj, opts.defaultNamespace);
  const f = new Findings();
  if (!isObject(obj)) {
    f.error('', 'document is not an object');
    return { ref, meshKind: false, findings: f.items };
  }
  const found = findKind(obj.apiVersion, obj.kind);
  if (!found) return { ref, meshKind: false, findings: [] };
  const { info, version } = found;
  if (!info.versions.includes(version))
    f.error(
      'apiVersion',
      `version ${JSON.stringify(version)} of ${info.group} is not served; use one of ${info.versions.join(', ')}`,
    );

  const meta = isObject(obj.metadata) ? obj.metadata : undefined;
  if (!meta) f.error('metadata', 'metadata is required');
  else if (typeof meta.name !== 'string' || meta.name === '') {
    if (typeof meta.generateName !== 'string') f.error('metadata.name', 'name is required');
  } else if (meta.name.length > 253 || meta.name.split('.').some((l) => checkDnsLabel(l)))
    f.error('metadata.name', `${JSON.stringify(meta.name)} is not a valid name (lowercase DNS subdomain)`);

  const spec = obj.spec === undefined ? {} : obj.spec;
  checkSchema(info, spec, f);
  // Semantics run even after schema errors (all problems at once), on whatever shape is there;
  // validators are written defensively for that.
  if (isObject(spec)) {
    SEMANTIC_VALIDATORS[info.kind]?.(spec, f, {
      name: ref.name,
      namespace: ref.namespace,
      rootNamespace: opts.rootNamespace ?? DEFAULT_ROOT_NAMESPACE,
    });
  }
  return { ref, meshKind: true, findings: f.items };
}

/** `VirtualService shop/reviews: spec.http[0].route[1].weight: must be >= 0` */
export function formatFinding(ref: ResourceRef, finding: Finding): string {
  const where = finding.path ? `${finding.path}: ` : '';
  return `${ref.kind} ${ref.namespace}/${ref.name}: ${where}${finding.message}`;
}
