/**
 * The `security` section of a workload's tables (src/tables/security.ts): the
 * AuthorizationPolicies and RequestAuthentications that apply to its inbound side, and its
 * local rate limits (pod annotations). Istio's selection rules:
 * - a policy in the root namespace applies mesh-wide (its selector, if any, still filters);
 * - a policy without selector applies to every workload of its namespace;
 * - `selector.matchLabels` must be a subset of the workload's labels;
 * - `targetRef(s)` to a Service: applies when the workload backs that Service (the Service's
 *   selector matches it); other kinds (Gateway, GatewayClass, ServiceEntry) are skipped with a
 *   warning (they attach to gateways and waypoints, not sidecars).
 * Objects that would make the tables invalid are skipped with a warning instead of failing the
 * whole config. Output is sorted by namespace/name: deterministic.
 */
import type { AuthorizationPolicySpec, AuthorizationRule } from '../api/security/authorization-policy.js';
import type { PolicyTargetReference } from '../api/security/common.js';
import type { JWTRule, RequestAuthenticationSpec } from '../api/security/request-authentication.js';
import { rateLimitFromAnnotations } from '../authz/rate-limit-config.js';
import { canonicalJson, getOrCreate, shortHash } from '../registry/hash.js';
import { selects } from '../registry/kube-objects.js';
import { DRY_RUN_ANNOTATION } from '../registry/snapshot.js';
import type { ConfigResource, MeshSnapshot, WorkloadIdentity } from '../registry/types.js';
import { workloadKey } from '../registry/workloads.js';
import {
  type AuthzPolicy,
  type AuthzRule,
  type InboundSecurity,
  type JwtRule,
  validateInboundSecurity,
} from '../tables/security.js';
import { durationMs } from './durations.js';
import type { CompileWarning, Warn } from './warnings.js';
import { Warnings } from './warnings.js';

export interface SecurityResult {
  /** Undefined when nothing applies (the tables then have no `security` section). */
  security: InboundSecurity | undefined;
  /** '' without a section, else a suffix for the tables version hash. */
  hash: string;
  warnings: CompileWarning[];
}

interface Selectable {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
}

const CACHE = new WeakMap<MeshSnapshot, Map<string, SecurityResult>>();

const byKey = (a: ConfigResource<unknown>, b: ConfigResource<unknown>) => {
  const x = `${a.namespace}/${a.name}`;
  const y = `${b.namespace}/${b.name}`;
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Istio's strconv.ParseBool on the dry-run annotation. */
function isTrue(v: string | undefined): boolean {
  return v === '1' || v === 't' || v === 'T' || v === 'true' || v === 'TRUE' || v === 'True';
}

/** Whether a policy (AuthorizationPolicy or RequestAuthentication) applies to the workload. */
export function policyApplies(
  snap: MeshSnapshot,
  c: ConfigResource<unknown>,
  w: WorkloadIdentity,
  warn: Warn,
): boolean {
  const spec = (c.spec ?? {}) as Selectable;
  const refs = spec.targetRefs?.length ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
  const resource = `${c.kind} ${c.namespace}/${c.name}`;
  if (refs.length) {
    if (c.namespace !== w.namespace) return false;
    let applies = false;
    for (const ref of refs) {
      const group = ref.group ?? '';
      if (ref.kind !== 'Service' || (group !== '' && group !== 'core')) {
        warn(resource, `targetRef ${ref.kind} ${ref.name}: only Service targets apply to sidecars; skipped`);
        continue;
      }
      if (ref.namespace && ref.namespace !== c.namespace) {
        warn(
          resource,
          `targetRef Service ${ref.namespace}/${ref.name}: must be in the policy's namespace; skipped`,
        );
        continue;
      }
      const svc = snap.services.find(
        (s) => s.registry === 'Kubernetes' && s.namespace === c.namespace && s.name === ref.name,
      );
      if (!svc) {
        warn(resource, `targetRef Service ${c.namespace}/${ref.name} does not exist; skipped`);
        continue;
      }
      if (svc.selector && Object.keys(svc.selector).length > 0 && selects(svc.selector, w.labels))
        applies = true;
    }
    return applies;
  }
  if (c.namespace !== snap.mesh.rootNamespace && c.namespace !== w.namespace) return false;
  const labels = spec.selector?.matchLabels;
  return labels === undefined || selects(labels, w.labels);
}

function copyRule(r: AuthorizationRule): AuthzRule {
  const out: AuthzRule = {};
  if (r.from) out.from = r.from.map((f) => ({ source: { ...(f.source ?? {}) } }));
  if (r.to) out.to = r.to.map((t) => ({ operation: { ...(t.operation ?? {}) } }));
  if (r.when)
    out.when = r.when.map((c) => ({
      key: c.key,
      ...(c.values !== undefined ? { values: c.values } : {}),
      ...(c.notValues !== undefined ? { notValues: c.notValues } : {}),
    }));
  return out;
}

export function authzPolicyOf(c: ConfigResource<unknown>): AuthzPolicy {
  const spec = (c.spec ?? {}) as AuthorizationPolicySpec;
  const action = spec.action ?? 'ALLOW';
  const p: AuthzPolicy = { name: c.name, namespace: c.namespace, action, rules: [] };
  if (action === 'CUSTOM' && spec.provider?.name) p.provider = spec.provider.name;
  if (isTrue(c.annotations?.[DRY_RUN_ANNOTATION])) p.dryRun = true;
  p.rules = (spec.rules ?? []).map(copyRule);
  return p;
}

export function jwtRuleOf(r: JWTRule): JwtRule {
  const out: JwtRule = {};
  if (r.issuer !== undefined) out.issuer = r.issuer;
  if (r.audiences?.length) out.audiences = r.audiences;
  if (r.jwks) out.jwks = r.jwks;
  if (r.jwksUri) out.jwksUri = r.jwksUri;
  if (r.fromHeaders?.length)
    out.fromHeaders = r.fromHeaders.map((h) => ({
      name: h.name ?? '',
      ...(h.prefix !== undefined ? { prefix: h.prefix } : {}),
    }));
  if (r.fromParams?.length) out.fromParams = r.fromParams;
  if (r.fromCookies?.length) out.fromCookies = r.fromCookies;
  if (r.forwardOriginalToken !== undefined) out.forwardOriginalToken = r.forwardOriginalToken;
  if (r.outputPayloadToHeader) out.outputPayloadToHeader = r.outputPayloadToHeader;
  if (r.outputClaimToHeaders?.length)
    out.outputClaimToHeaders = r.outputClaimToHeaders.map((h) => ({
      header: h.header ?? '',
      claim: h.claim ?? '',
    }));
  const timeout = durationMs(r.timeout);
  if (timeout !== undefined) out.timeoutMs = timeout;
  return out;
}

function problems(section: InboundSecurity): string | undefined {
  const v = validateInboundSecurity(section);
  return v.ok ? undefined : v.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
}

function build(snap: MeshSnapshot, w: WorkloadIdentity): SecurityResult {
  const warnings = new Warnings();
  const warn = warnings.warn;
  const policies: AuthzPolicy[] = [];
  for (const c of [...(snap.authorizationPolicies ?? [])].sort(byKey)) {
    if (!policyApplies(snap, c, w, warn)) continue;
    const p = authzPolicyOf(c);
    const bad = problems({ policies: [p] });
    if (bad)
      warn(
        `AuthorizationPolicy ${c.namespace}/${c.name}`,
        `not applied: ${bad.replaceAll('policies[0].', '')}`,
      );
    else policies.push(p);
  }
  const jwtRules: JwtRule[] = [];
  for (const c of [...(snap.requestAuthentications ?? [])].sort(byKey)) {
    if (!policyApplies(snap, c, w, warn)) continue;
    const spec = (c.spec ?? {}) as RequestAuthenticationSpec;
    (spec.jwtRules ?? []).forEach((r, i) => {
      const rule = jwtRuleOf(r);
      const bad = problems({ jwtRules: [rule] });
      if (bad)
        warn(
          `RequestAuthentication ${c.namespace}/${c.name}`,
          `jwtRules[${i}] not applied: ${bad.replaceAll('jwtRules[0]', `jwtRules[${i}]`)}`,
        );
      else jwtRules.push(rule);
    });
  }
  const rl = rateLimitFromAnnotations(w.annotations);
  for (const e of rl.errors) warn(`Workload ${w.namespace}/${w.name}`, e);
  const security: InboundSecurity = {};
  if (policies.length) security.policies = policies;
  if (jwtRules.length) security.jwtRules = jwtRules;
  if (rl.settings) security.rateLimit = rl.settings;
  const empty = !security.policies && !security.jwtRules && !security.rateLimit;
  return {
    security: empty ? undefined : security,
    hash: empty ? '' : `|security:${shortHash(canonicalJson(security))}`,
    warnings: warnings.sorted(),
  };
}

/** The security section of one workload, memoized per snapshot. */
export function inboundSecurityFor(snap: MeshSnapshot, w: WorkloadIdentity): SecurityResult {
  if (!snap.authorizationPolicies?.length && !snap.requestAuthentications?.length && !w.annotations)
    return NONE;
  const cache = getOrCreate(CACHE, snap, () => new Map<string, SecurityResult>());
  return getOrCreate(cache, `${workloadKey(w)}|${w.name}`, () => build(snap, w));
}

const NONE: SecurityResult = { security: undefined, hash: '', warnings: [] };

/** `base` (sorted) plus the security warnings, sorted; `base` itself when there are none. */
export function withSecurityWarnings(base: CompileWarning[], extra: CompileWarning[]): CompileWarning[] {
  if (extra.length === 0) return base;
  const w = new Warnings();
  for (const x of [...base, ...extra]) w.warn(x.resource, x.message);
  return w.sorted();
}
