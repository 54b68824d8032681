/**
 * AdmissionReview decoding and encoding (admission.k8s.io v1 and v1beta1), independent of HTTP.
 * Handlers are plain functions from a decoded request to a decision; this module owns the
 * envelope, so a malformed review is refused here with a message that says what is wrong.
 */
export const ADMISSION_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const;
export type AdmissionApiVersion = (typeof ADMISSION_VERSIONS)[number];

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  name?: string;
  namespace?: string;
  operation: string;
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionDecision {
  allowed: boolean;
  /** Reason shown to the user when denied. */
  message?: string;
  warnings?: string[];
  /** RFC 6902 operations (mutating webhooks only). */
  patch?: unknown[];
}

export class BadReviewError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the envelope and returns the request; throws BadReviewError naming the problem. */
export function decodeReview(body: unknown): { apiVersion: AdmissionApiVersion; request: AdmissionRequest } {
  if (!isObject(body)) throw new BadReviewError('body must be a JSON AdmissionReview object');
  if (body.kind !== 'AdmissionReview')
    throw new BadReviewError(`kind must be AdmissionReview, got ${JSON.stringify(body.kind ?? null)}`);
  if (!ADMISSION_VERSIONS.includes(body.apiVersion as AdmissionApiVersion))
    throw new BadReviewError(
      `apiVersion must be one of ${ADMISSION_VERSIONS.join(', ')}, got ${JSON.stringify(body.apiVersion ?? null)}`,
    );
  const req = body.request;
  if (!isObject(req)) throw new BadReviewError('request is missing');
  if (typeof req.uid !== 'string' || req.uid === '') throw new BadReviewError('request.uid is missing');
  if (!isObject(req.kind) || typeof req.kind.kind !== 'string')
    throw new BadReviewError('request.kind must be an object with group, version and kind');
  if (typeof req.operation !== 'string') throw new BadReviewError('request.operation is missing');
  return { apiVersion: body.apiVersion as AdmissionApiVersion, request: req as unknown as AdmissionRequest };
}

export function encodeReview(apiVersion: AdmissionApiVersion, uid: string, d: AdmissionDecision): unknown {
  const response: Record<string, unknown> = { uid, allowed: d.allowed };
  if (!d.allowed) response.status = { code: 403, reason: 'Forbidden', message: d.message ?? 'denied' };
  else if (d.message) response.status = { code: 200, message: d.message };
  if (d.warnings?.length) response.warnings = d.warnings;
  if (d.patch?.length) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(d.patch)).toString('base64');
  }
  return { apiVersion, kind: 'AdmissionReview', response };
}
