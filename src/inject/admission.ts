/**
 * The `/inject` admission handler, pure: the HTTPS server decodes the AdmissionReview, calls
 * `injectAdmission`, and wraps the answer with `admissionResponse`. The patch is computed by diffing the
 * original and injected pods (fast-json-patch), never written by hand.
 */
import jsonpatch, { type Operation } from 'fast-json-patch';
import { injectPod } from './inject.js';
import { namespaceSkip } from './policy.js';
import type { InjectContext, InjectTarget, Pod, SkipReason } from './types.js';

export interface AdmissionInjectResult {
  /** Always true for skips and injections; false only when the pod cannot be rendered. */
  allowed: boolean;
  /** RFC 6902 operations turning the submitted pod into the injected one; absent when nothing changes. */
  patch?: Operation[];
  warnings?: string[];
  /** Why the pod was refused (allowed=false) or skipped. */
  message?: string;
  /** Set when the pod was left alone; for events and metrics. */
  skipReason?: SkipReason;
}

/**
 * Decides and computes the mutation for one pod CREATE. `namespaceLabels`, when the server knows them, are
 * checked too (the webhook's namespaceSelector normally did that already); `target.namespace` should be the
 * request's namespace, since pods created by controllers often have an empty `metadata.namespace`.
 */
export function injectAdmission(
  pod: Pod,
  namespaceLabels: Record<string, string> | undefined,
  ctx: InjectContext,
  target: InjectTarget = {},
): AdmissionInjectResult {
  const nsSkip = namespaceSkip(pod, namespaceLabels);
  if (nsSkip) return { allowed: true, message: nsSkip.message, skipReason: nsSkip.reason };

  const result = injectPod(pod, ctx, target);
  const warnings = result.kind === 'error' ? undefined : nonEmpty(result.warnings);
  switch (result.kind) {
    case 'error':
      return { allowed: false, message: `sidecar injection failed: ${result.message}` };
    case 'skipped':
      return {
        allowed: true,
        message: result.message,
        skipReason: result.reason,
        ...(warnings && { warnings }),
      };
    case 'injected': {
      // Plain-JSON copies so `undefined` fields and class instances never reach the diff.
      const before = JSON.parse(JSON.stringify(pod)) as object;
      const after = JSON.parse(JSON.stringify(result.pod)) as object;
      return { allowed: true, patch: jsonpatch.compare(before, after), ...(warnings && { warnings }) };
    }
  }
}

function nonEmpty(list: string[]): string[] | undefined {
  return list.length > 0 ? list : undefined;
}

/** The `response` of an AdmissionReview (v1 and v1beta1 share it) for `injectAdmission`'s result. */
export function admissionResponse(uid: string, r: AdmissionInjectResult): Record<string, unknown> {
  const response: Record<string, unknown> = { uid, allowed: r.allowed };
  if (!r.allowed) response.status = { code: 400, message: r.message ?? 'sidecar injection failed' };
  if (r.patch && r.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(r.patch)).toString('base64');
  }
  if (r.warnings) response.warnings = r.warnings;
  return response;
}
