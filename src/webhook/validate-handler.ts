/** The validating webhook's decision: the same verdict `isthmus analyze` gives for one object. */
import { formatFinding, validateResource } from '../validation/resource.js';
import type { AdmissionDecision, AdmissionRequest } from './admission.js';

export interface ValidateHandlerOptions {
  rootNamespace?: string;
}

export function validateAdmission(
  req: AdmissionRequest,
  opts: ValidateHandlerOptions = {},
): AdmissionDecision {
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return { allowed: true };
  if (req.object === undefined || req.object === null)
    return { allowed: false, message: `${req.kind.kind}: the review carries no object to validate` };
  const verdict = validateResource(req.object, {
    defaultNamespace: req.namespace || 'default',
    ...(opts.rootNamespace ? { rootNamespace: opts.rootNamespace } : {}),
  });
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const f of verdict.findings)
    (f.severity === 'error' ? errors : warnings).push(formatFinding(verdict.ref, f));
  if (errors.length) return { allowed: false, message: errors.join('; '), warnings };
  return { allowed: true, warnings };
}
