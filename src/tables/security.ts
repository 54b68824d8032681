/**
 * Inbound security section of the compiled config: what the control plane gives one workload's
 * inbound side. Self-contained (schema, types, validator) so it can be hooked into the tables
 * document as `security` without touching the rest of the contract.
 *
 * The compiler has already done the Kubernetes part of the work:
 * - `policies` are the AuthorizationPolicies that apply to this workload (root namespace +
 *   namespace + selector/targetRef matched), in any order; the proxy orders by action.
 * - principals are in `<trust-domain>/ns/<ns>/sa/<sa>` form (no `spiffe://`), ports are strings
 *   as in Istio; `serviceAccounts` entries are `<ns>/<sa>` (a bare `<sa>` means the policy's
 *   namespace).
 * - `jwtRules` are the union of the RequestAuthentications that apply; durations are integer
 *   milliseconds.
 * - `rateLimit` comes from the workload annotations `isthmus.io/local-rate-limit` and
 *   `isthmus.io/local-rate-limit-routes` (parsed by src/authz/rate-limit-config.ts; see
 *   src/authz/README.md for why an annotation).
 *
 * Rule shapes are Istio's (`from[].source`, `to[].operation`, `when[]`), so the proxy's
 * semantics can be checked against Istio's documentation field by field.
 */

import { isIP } from 'node:net';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { isKnownConditionKey } from '../api/security/conditions.js';
import { Bool, Count, Enum, List, MapOf, NonEmpty, Obj, Opt, type Static, Str, Type } from './kit.js';

export const AUTHZ_POLICY_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
export type AuthzPolicyAction = (typeof AUTHZ_POLICY_ACTIONS)[number];

/** Istio's meshConfig.pathNormalization.normalization. */
export const PATH_NORMALIZATIONS = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

const Strings = (description?: string) => Opt(List(Type.String({ minLength: 1 }), description));

export const AuthzSourceSchema = Obj({
  principals: Strings('Peer identities, `<td>/ns/<ns>/sa/<sa>`; exact, `prefix*`, `*suffix`, `*`.'),
  notPrincipals: Strings(),
  requestPrincipals: Strings('JWT identities `<iss>/<sub>`. HTTP only.'),
  notRequestPrincipals: Strings(),
  namespaces: Strings('Peer namespaces (from the peer certificate).'),
  notNamespaces: Strings(),
  serviceAccounts: Strings('`<ns>/<sa>` (or `<sa>` in the policy namespace).'),
  notServiceAccounts: Strings(),
  ipBlocks: Strings('Source IP of the connection: IP or CIDR.'),
  notIpBlocks: Strings(),
  remoteIpBlocks: Strings('Original client IP (X-Forwarded-For / proxy protocol): IP or CIDR.'),
  notRemoteIpBlocks: Strings(),
});
export type AuthzSource = Static<typeof AuthzSourceSchema>;

export const AuthzOperationSchema = Obj({
  hosts: Strings('Host/authority, case-insensitive. HTTP only.'),
  notHosts: Strings(),
  ports: Strings('Destination ports as strings.'),
  notPorts: Strings(),
  methods: Strings('HTTP methods. HTTP only.'),
  notMethods: Strings(),
  paths: Strings('Normalized path without query; exact, `prefix*`, `*suffix`, `*`, `{*}`/`{**}`. HTTP only.'),
  notPaths: Strings(),
});
export type AuthzOperation = Static<typeof AuthzOperationSchema>;

export const AuthzConditionSchema = Obj({
  key: NonEmpty('An Istio attribute, e.g. request.headers[x-user] or source.ip.'),
  values: Strings(),
  notValues: Strings(),
});
export type AuthzCondition = Static<typeof AuthzConditionSchema>;

export const AuthzRuleSchema = Obj({
  from: Opt(List(Obj({ source: AuthzSourceSchema }), 'ORed; absent = any source.')),
  to: Opt(List(Obj({ operation: AuthzOperationSchema }), 'ORed; absent = any operation.')),
  when: Opt(List(AuthzConditionSchema, 'ANDed.')),
});
export type AuthzRule = Static<typeof AuthzRuleSchema>;

export const AuthzPolicySchema = Obj({
  name: NonEmpty(),
  namespace: NonEmpty(),
  action: Enum([...AUTHZ_POLICY_ACTIONS]),
  provider: Opt(NonEmpty('CUSTOM only: the extension provider name.')),
  dryRun: Opt(Bool('Annotation istio.io/dry-run: evaluated and reported, never enforced.')),
  rules: List(AuthzRuleSchema, 'Empty = the policy never matches (an ALLOW `spec: {}` denies all).'),
});
export type AuthzPolicy = Static<typeof AuthzPolicySchema>;

export const JwtHeaderSchema = Obj({ name: NonEmpty(), prefix: Opt(Str()) });

export const JwtRuleSchema = Obj({
  issuer: Opt(Str('Expected `iss`; empty/absent = any issuer signed by these keys.')),
  audiences: Opt(List(NonEmpty(), 'Accepted `aud` values (any); empty = no audience check.')),
  jwks: Opt(NonEmpty('Inline JSON Web Key Set; wins over jwksUri.')),
  jwksUri: Opt(NonEmpty('http(s) URL of the key set, fetched by the proxy.')),
  fromHeaders: Opt(List(JwtHeaderSchema)),
  fromParams: Opt(List(NonEmpty())),
  fromCookies: Opt(List(NonEmpty())),
  forwardOriginalToken: Opt(Bool()),
  outputPayloadToHeader: Opt(NonEmpty()),
  outputClaimToHeaders: Opt(List(Obj({ header: NonEmpty(), claim: NonEmpty() }))),
  timeoutMs: Opt(Count('JWKS fetch timeout (default 5000).')),
});
export type JwtRule = Static<typeof JwtRuleSchema>;

export const TokenBucketSchema = Obj({
  maxTokens: Type.Integer({ minimum: 1, description: 'Bucket size (burst).' }),
  tokensPerFill: Type.Integer({ minimum: 1 }),
  fillIntervalMs: Type.Integer({ minimum: 1 }),
});
export type TokenBucketSettings = Static<typeof TokenBucketSchema>;

export const RateLimitSettingsSchema = Obj({
  workload: Opt(TokenBucketSchema),
  routes: Opt(MapOf(TokenBucketSchema, 'Route name -> bucket; replaces the workload bucket for that route.')),
});
export type RateLimitSettings = Static<typeof RateLimitSettingsSchema>;

export const InboundSecuritySchema = Obj({
  policies: Opt(List(AuthzPolicySchema)),
  jwtRules: Opt(List(JwtRuleSchema)),
  rateLimit: Opt(RateLimitSettingsSchema),
  pathNormalization: Opt(Enum([...PATH_NORMALIZATIONS], 'Default BASE, as Istio.')),
  customAuthz: Opt(
    Enum(['deny', 'ignore'], 'What a matching CUSTOM policy does (no ext-authz support): default deny.'),
  ),
});
export type InboundSecurity = Static<typeof InboundSecuritySchema>;

export interface SecurityError {
  path: string;
  message: string;
}

export type ValidatedSecurity =
  | { ok: true; value: InboundSecurity; errors: [] }
  | { ok: false; errors: SecurityError[] };

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
let validator: ValidateFunction | undefined;

/** Schema (ajv, compiled once) then semantic checks. Never throws. */
export function validateInboundSecurity(json: unknown): ValidatedSecurity {
  validator ??= ajv.compile(InboundSecuritySchema);
  if (!validator(json)) return { ok: false, errors: schemaErrors(validator.errors) };
  const value = json as InboundSecurity;
  const errors = checkSecuritySemantics(value);
  return errors.length ? { ok: false, errors } : { ok: true, value, errors: [] };
}

export { isKnownConditionKey };

/** An IP address or CIDR block, or undefined when malformed. */
export function cidrProblem(v: string): string | undefined {
  const [addr, bits, extra] = v.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) return `${JSON.stringify(v)} is not an IP address or CIDR block`;
  if (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)))
    return `${JSON.stringify(v)} has an invalid prefix length`;
  return undefined;
}

function portProblem(v: string): string | undefined {
  if (!/^\d+$/.test(v) || Number(v) > 65535) return `port ${JSON.stringify(v)} must be a number 0..65535`;
  return undefined;
}

function checkSecuritySemantics(s: InboundSecurity): SecurityError[] {
  const errors: SecurityError[] = [];
  const each = (path: string, values: string[] | undefined, check: (v: string) => string | undefined) =>
    values?.forEach((v, i) => {
      const m = check(v);
      if (m) errors.push({ path: `${path}[${i}]`, message: m });
    });
  s.policies?.forEach((p, pi) => {
    const pp = `policies[${pi}]`;
    if (p.action === 'CUSTOM' && !p.provider)
      errors.push({ path: `${pp}.provider`, message: 'CUSTOM policies need a provider' });
    p.rules.forEach((r, ri) => {
      const rp = `${pp}.rules[${ri}]`;
      r.from?.forEach((f, fi) => {
        const sp = `${rp}.from[${fi}].source`;
        for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const)
          each(`${sp}.${k}`, f.source[k], cidrProblem);
      });
      r.to?.forEach((t, ti) => {
        const op = `${rp}.to[${ti}].operation`;
        each(`${op}.ports`, t.operation.ports, portProblem);
        each(`${op}.notPorts`, t.operation.notPorts, portProblem);
      });
      r.when?.forEach((c, ci) => {
        const cp = `${rp}.when[${ci}]`;
        if (!isKnownConditionKey(c.key)) errors.push({ path: `${cp}.key`, message: `unknown key ${c.key}` });
        if (!c.values?.length && !c.notValues?.length)
          errors.push({ path: cp, message: 'values or notValues must be set' });
        const check =
          c.key === 'source.ip' || c.key === 'remote.ip' || c.key === 'destination.ip'
            ? cidrProblem
            : c.key === 'destination.port'
              ? portProblem
              : undefined;
        if (check) {
          each(`${cp}.values`, c.values, check);
          each(`${cp}.notValues`, c.notValues, check);
        }
      });
    });
  });
  s.jwtRules?.forEach((j, i) => {
    if (!j.jwks && !j.jwksUri)
      errors.push({ path: `jwtRules[${i}]`, message: 'one of jwks or jwksUri is required' });
    if (j.jwksUri && !/^https?:\/\/[^/]/.test(j.jwksUri))
      errors.push({ path: `jwtRules[${i}].jwksUri`, message: 'must be an http(s) URL' });
    if (j.jwks) {
      const m = jwksProblem(j.jwks);
      if (m) errors.push({ path: `jwtRules[${i}].jwks`, message: m });
    }
  });
  return errors;
}

function jwksProblem(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'is not valid JSON';
  }
  if (doc === null || typeof doc !== 'object') return 'must be a JSON Web Key Set or a JSON Web Key';
  const keys = (doc as { keys?: unknown }).keys;
  if (keys === undefined)
    return typeof (doc as { kty?: unknown }).kty === 'string' ? undefined : 'has no "kty"';
  if (!Array.isArray(keys) || keys.length === 0) return 'has no keys';
  return undefined;
}

function schemaErrors(errs: ErrorObject[] | null | undefined): SecurityError[] {
  return (errs ?? []).map((e) => {
    const base = e.instancePath
      .slice(1)
      .split('/')
      .filter((s) => s !== '')
      .map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`))
      .join('');
    if (e.keyword === 'additionalProperties')
      return {
        path: `${base ? `${base}.` : ''}${String(e.params.additionalProperty)}`,
        message: 'unknown field',
      };
    if (e.keyword === 'required')
      return {
        path: `${base ? `${base}.` : ''}${String(e.params.missingProperty)}`,
        message: 'required field missing',
      };
    return { path: base, message: e.message ?? 'invalid' };
  });
}
