/**
 * The authorization engine: compile a workload's policies once per config version, then
 * `authorize(attrs)` per request or TCP connection with Istio's semantics:
 *
 *   AUDIT (marks only) ; CUSTOM -> DENY -> ALLOW
 *   - a matching CUSTOM policy denies (ext-authz providers are not supported; the reason says so)
 *     unless `customAuthz: 'ignore'`; this is what Istio itself does when a CUSTOM provider is
 *     unusable (it generates DENY rules from the CUSTOM policy's rules);
 *   - a matching DENY policy denies;
 *   - no ALLOW policy at all: allowed; ALLOW policies present and one matches: allowed; else
 *     denied (HTTP 403 `RBAC: access denied`, TCP connection closed);
 *   - a policy without rules never matches, so an ALLOW `spec: {}` denies everything and
 *     `rules: [{}]` matches everything.
 * Dry-run policies (`istio.io/dry-run`) are evaluated on the side and reported in
 * `shadowDenied`/`shadowPolicy`, never enforced.
 *
 * Per request: no allocation (the decision object is reusable), no closures, no regexes.
 */
import type { AuthzPolicy } from '../tables/security.js';
import type { AuthzAttributes } from './attributes.js';
import {
  type Account,
  type Check,
  type CompiledPolicy,
  type CompiledRule,
  compilePolicy,
  F_CLAIM,
  F_DEST_IP,
  F_FIXED,
  F_HEADER,
  F_HOST,
  F_METHOD,
  F_NAMESPACE,
  F_PATH,
  F_PORT,
  F_PRINCIPAL,
  F_REMOTE_IP,
  F_REQUEST_PRINCIPAL,
  F_SERVICE_ACCOUNT,
  F_SNI,
  F_SOURCE_IP,
} from './compile.js';
import { anyString, M_PORT, type Matcher } from './match.js';

/** Body of the 403 answer, as Envoy's RBAC filter writes it. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

export const REASON_NO_POLICIES = 'allowed: no authorization policy applies';
export const REASON_NO_ALLOW_POLICY = 'allowed: no ALLOW policy applies and no DENY policy matched';
export const REASON_NOT_ALLOWED = 'denied: no ALLOW policy matched';

export interface AuthzEngineOptions {
  /** What a matching CUSTOM policy does: 'deny' (default, fail closed) or 'ignore'. */
  customAuthz?: 'deny' | 'ignore';
}

/** Reusable result of `authorize`; every field is rewritten on each call. */
export class AuthzDecision {
  allowed = true;
  /** `<ns>/<name>` of the policy that decided ('' when none did). */
  policy = '';
  /** Istio-style id of the deciding rule: `ns[<ns>]-policy[<name>]-rule[<i>]`. */
  ruleId = '';
  /** Human-readable reason (precomputed strings; safe to log). */
  reason = REASON_NO_POLICIES;
  /** True when an AUDIT policy matched (access logs should record the request). */
  audit = false;
  auditPolicy = '';
  /** Result of the dry-run policies alone (Istio's shadow engine), when there are any. */
  shadowDenied = false;
  shadowPolicy = '';
  /**
   * Istio's two shadow engines, as Envoy's RBAC filter reports them in dynamic metadata
   * (`istio_dry_run_allow_shadow_engine_result` / `..._shadow_effective_policy_id`, and the
   * same with `deny`): '' = no dry-run policy of that action, else 'allowed' / 'denied'; the
   * policy id is the matched rule's `ns[<ns>]-policy[<name>]-rule[<i>]` ('' when none matched).
   */
  dryRunAllowResult: '' | 'allowed' | 'denied' = '';
  dryRunAllowPolicy = '';
  dryRunDenyResult: '' | 'allowed' | 'denied' = '';
  dryRunDenyPolicy = '';
}

function claimValue(claims: Record<string, unknown>, path: readonly string[]): unknown {
  let v: unknown = claims;
  for (let i = 0; i < path.length; i++) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[path[i]!];
  }
  return v;
}

/** A string claim, or any string element of a list claim, matches. Other types never match. */
function claimMatches(v: unknown, ms: readonly Matcher[]): boolean {
  if (typeof v === 'string') return anyString(ms, v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (typeof e === 'string' && anyString(ms, e)) return true;
    }
  }
  return false;
}

/** Comma-separated header values: any element (untrimmed, as Envoy's regex) matches. */
function headerMatches(v: string, ms: readonly Matcher[]): boolean {
  for (let m = 0; m < ms.length; m++) {
    const matcher = ms[m]!;
    let start = 0;
    for (;;) {
      const comma = v.indexOf(',', start);
      const end = comma < 0 ? v.length : comma;
      if (matcher.matchRange(v, start, end)) return true;
      if (comma < 0) break;
      start = comma + 1;
    }
  }
  return false;
}

function hostMatches(a: AuthzAttributes, ms: readonly Matcher[]): boolean {
  if (a.host === '') return false;
  const h = a.hostLower();
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!;
    // A value without a port matches the host with or without a port; a value with one
    // matches the authority exactly (see README: hosts).
    if (m.matchString(h) || (!m.hasPort && m.matchString(a.hostWithoutPort()))) return true;
  }
  return false;
}

function accountMatches(p: string, accounts: readonly Account[]): boolean {
  if (p === '') return false;
  const at = p.indexOf('/ns/');
  if (at <= 0) return false;
  const nsStart = at + 4;
  const nsEnd = p.indexOf('/', nsStart);
  if (nsEnd < 0 || !p.startsWith('/sa/', nsEnd)) return false;
  const saStart = nsEnd + 4;
  let saEnd = p.indexOf('/', saStart);
  if (saEnd < 0) saEnd = p.length;
  for (let i = 0; i < accounts.length; i++) {
    const acc = accounts[i]!;
    if (
      acc.ns.length === nsEnd - nsStart &&
      acc.sa.length === saEnd - saStart &&
      p.startsWith(acc.ns, nsStart) &&
      p.startsWith(acc.sa, saStart)
    )
      return true;
  }
  return false;
}

/** Whether any of `ms` matches the attribute of `c` (false when the attribute is absent). */
function fieldMatches(c: Check, ms: readonly Matcher[], a: AuthzAttributes): boolean {
  switch (c.kind) {
    case F_PRINCIPAL:
      return a.sourcePrincipal !== '' && anyString(ms, a.sourcePrincipal);
    case F_REQUEST_PRINCIPAL:
      return a.requestPrincipal !== '' && anyString(ms, a.requestPrincipal);
    case F_NAMESPACE: {
      const ns = a.sourceNamespace();
      return ns !== '' && anyString(ms, ns);
    }
    case F_SOURCE_IP: {
      const fam = a.sourceFamily();
      if (fam === 0) return false;
      const addr = a.sourceAddr();
      for (let i = 0; i < ms.length; i++) if (ms[i]!.matchIp(fam, addr)) return true;
      return false;
    }
    case F_REMOTE_IP: {
      const fam = a.remoteFamily();
      if (fam === 0) return false;
      const addr = a.remoteAddr();
      for (let i = 0; i < ms.length; i++) if (ms[i]!.matchIp(fam, addr)) return true;
      return false;
    }
    case F_DEST_IP: {
      const fam = a.destinationFamily();
      if (fam === 0) return false;
      const addr = a.destinationAddr();
      for (let i = 0; i < ms.length; i++) if (ms[i]!.matchIp(fam, addr)) return true;
      return false;
    }
    case F_PORT:
      for (let i = 0; i < ms.length; i++) {
        const m = ms[i]!;
        if (m.kind === M_PORT && m.port === a.destinationPort) return true;
      }
      return false;
    case F_HOST:
      return hostMatches(a, ms);
    case F_METHOD:
      return a.method !== '' && anyString(ms, a.method);
    case F_PATH:
      return a.path !== '' && anyString(ms, a.path);
    case F_SNI:
      return a.sni !== '' && anyString(ms, a.sni);
    case F_HEADER: {
      const v = a.header(c.header);
      return v !== undefined && headerMatches(v, ms);
    }
    case F_CLAIM:
      return a.claims !== null && claimMatches(claimValue(a.claims, c.claimPath), ms);
    default:
      return false;
  }
}

function checkPasses(c: Check, a: AuthzAttributes): boolean {
  if (c.kind === F_FIXED) return c.fixed;
  if (c.kind === F_SERVICE_ACCOUNT) {
    if (c.accounts.length > 0 && !accountMatches(a.sourcePrincipal, c.accounts)) return false;
    return !(c.notAccounts.length > 0 && accountMatches(a.sourcePrincipal, c.notAccounts));
  }
  if (c.values.length > 0 && !fieldMatches(c, c.values, a)) return false;
  return !(c.notValues.length > 0 && fieldMatches(c, c.notValues, a));
}

function allPass(cs: readonly Check[], a: AuthzAttributes): boolean {
  for (let i = 0; i < cs.length; i++) if (!checkPasses(cs[i]!, a)) return false;
  return true;
}

function anyGroup(groups: readonly Check[][], a: AuthzAttributes): boolean {
  if (groups.length === 0) return true;
  for (let i = 0; i < groups.length; i++) if (allPass(groups[i]!, a)) return true;
  return false;
}

function ruleMatches(r: CompiledRule, a: AuthzAttributes): boolean {
  return allPass(r.when, a) && anyGroup(r.operations, a) && anyGroup(r.sources, a);
}

/** The first rule of `p` that matches, or null. */
function matchPolicy(p: CompiledPolicy, a: AuthzAttributes): CompiledRule | null {
  const rules = a.tcp ? p.tcp : p.http;
  for (let i = 0; i < rules.length; i++) if (ruleMatches(rules[i]!, a)) return rules[i]!;
  return null;
}

export class AuthzEngine {
  readonly custom: CompiledPolicy[];
  readonly deny: CompiledPolicy[];
  readonly allow: CompiledPolicy[];
  readonly audit: CompiledPolicy[];
  readonly dryRunDeny: CompiledPolicy[];
  readonly dryRunAllow: CompiledPolicy[];
  /** True when no enforced policy applies: `authorize` only fills in AUDIT. */
  readonly empty: boolean;

  private constructor(policies: CompiledPolicy[], opts: AuthzEngineOptions) {
    const enforced = policies.filter((p) => !p.dryRun);
    this.custom = opts.customAuthz === 'ignore' ? [] : enforced.filter((p) => p.action === 'CUSTOM');
    this.deny = enforced.filter((p) => p.action === 'DENY');
    this.allow = enforced.filter((p) => p.action === 'ALLOW');
    this.audit = policies.filter((p) => p.action === 'AUDIT');
    this.dryRunDeny = policies.filter((p) => p.dryRun && (p.action === 'DENY' || p.action === 'CUSTOM'));
    this.dryRunAllow = policies.filter((p) => p.dryRun && p.action === 'ALLOW');
    this.empty = this.custom.length + this.deny.length + this.allow.length === 0;
  }

  /**
   * Compiles the policies that apply to one workload. Throws AuthzCompileError naming the field
   * (`policies[3].rules[0].from[1].source.ipBlocks[0]`) when a value is malformed; the proxy
   * should then keep its previous engine.
   */
  static compile(policies: readonly AuthzPolicy[] = [], opts: AuthzEngineOptions = {}): AuthzEngine {
    return new AuthzEngine(
      policies.map((p, i) => compilePolicy(p, `policies[${i}]`)),
      opts,
    );
  }

  /** Decides for `a`; writes into `out` (reuse one per connection/stream) and returns it. */
  authorize(a: AuthzAttributes, out: AuthzDecision = new AuthzDecision()): AuthzDecision {
    out.audit = false;
    out.auditPolicy = '';
    for (let i = 0; i < this.audit.length; i++) {
      const p = this.audit[i]!;
      if (p.dryRun) continue;
      if (matchPolicy(p, a) !== null) {
        out.audit = true;
        out.auditPolicy = p.key;
        break;
      }
    }
    if (this.dryRunDeny.length + this.dryRunAllow.length > 0) this.shadow(a, out);
    else {
      out.shadowDenied = false;
      out.shadowPolicy = '';
      out.dryRunAllowResult = '';
      out.dryRunAllowPolicy = '';
      out.dryRunDenyResult = '';
      out.dryRunDenyPolicy = '';
    }
    if (this.empty) return decide(out, true, '', '', REASON_NO_POLICIES);

    for (let i = 0; i < this.custom.length; i++) {
      const p = this.custom[i]!;
      const r = matchPolicy(p, a);
      if (r !== null) return decide(out, false, p.key, r.id, p.reason);
    }
    for (let i = 0; i < this.deny.length; i++) {
      const p = this.deny[i]!;
      const r = matchPolicy(p, a);
      if (r !== null) return decide(out, false, p.key, r.id, p.reason);
    }
    if (this.allow.length === 0) return decide(out, true, '', '', REASON_NO_ALLOW_POLICY);
    for (let i = 0; i < this.allow.length; i++) {
      const p = this.allow[i]!;
      const r = matchPolicy(p, a);
      if (r !== null) return decide(out, true, p.key, r.id, p.reason);
    }
    return decide(out, false, '', '', REASON_NOT_ALLOWED);
  }

  private shadow(a: AuthzAttributes, out: AuthzDecision): void {
    // Each engine separately, as Istio configures Envoy (istio_dry_run_deny_ / _allow_).
    out.dryRunDenyResult = '';
    out.dryRunDenyPolicy = '';
    let denyKey = '';
    if (this.dryRunDeny.length > 0) {
      out.dryRunDenyResult = 'allowed';
      for (let i = 0; i < this.dryRunDeny.length; i++) {
        const p = this.dryRunDeny[i]!;
        const r = matchPolicy(p, a);
        if (r !== null) {
          out.dryRunDenyResult = 'denied';
          out.dryRunDenyPolicy = r.id;
          denyKey = p.key;
          break;
        }
      }
    }
    out.dryRunAllowResult = '';
    out.dryRunAllowPolicy = '';
    let allowKey = '';
    if (this.dryRunAllow.length > 0) {
      out.dryRunAllowResult = 'denied';
      for (let i = 0; i < this.dryRunAllow.length; i++) {
        const p = this.dryRunAllow[i]!;
        const r = matchPolicy(p, a);
        if (r !== null) {
          out.dryRunAllowResult = 'allowed';
          out.dryRunAllowPolicy = r.id;
          allowKey = p.key;
          break;
        }
      }
    }
    // Combined view: a dry-run DENY match wins, then the ALLOW engine's verdict.
    out.shadowDenied = denyKey !== '' || out.dryRunAllowResult === 'denied';
    out.shadowPolicy = denyKey !== '' ? denyKey : allowKey;
  }
}

/**
 * Counts of the dry-run engines' verdicts per inbound port: Istio's RBAC shadow stats
 * (`envoy_http_inbound_0_0_0_0_<port>_rbac{authz_dry_run_action,authz_dry_run_result}`).
 */
export class DryRunStats {
  /** key = port * 4 + engine (0 allow, 1 deny) * 2 + (1 denied, 0 allowed). */
  private readonly counts = new Map<number, number>();

  /** Adds the dry-run outcome of `d` (no-op when the request met no dry-run policy). */
  count(port: number, d: AuthzDecision): void {
    if (d.dryRunAllowResult !== '') this.add(port * 4 + (d.dryRunAllowResult === 'denied' ? 1 : 0));
    if (d.dryRunDenyResult !== '') this.add(port * 4 + 2 + (d.dryRunDenyResult === 'denied' ? 1 : 0));
  }

  private add(key: number): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  get(port: number, action: 'allow' | 'deny', result: 'allowed' | 'denied'): number {
    return this.counts.get(port * 4 + (action === 'deny' ? 2 : 0) + (result === 'denied' ? 1 : 0)) ?? 0;
  }

  /** Prometheus text ('' before any dry-run policy met a request). */
  render(): string {
    if (this.counts.size === 0) return '';
    const out: string[] = [];
    let lastPort = -1;
    for (const key of [...this.counts.keys()].sort((a, b) => a - b)) {
      const port = Math.floor(key / 4);
      const name = `envoy_http_inbound_0_0_0_0_${port}_rbac`;
      if (port !== lastPort) out.push(`# TYPE ${name} counter`);
      lastPort = port;
      const action = key & 2 ? 'deny' : 'allow';
      const result = key & 1 ? 'denied' : 'allowed';
      out.push(
        `${name}{authz_dry_run_action="${action}",authz_dry_run_result="${result}"} ${this.counts.get(key)}`,
      );
    }
    return `${out.join('\n')}\n`;
  }
}

function decide(
  out: AuthzDecision,
  allowed: boolean,
  policy: string,
  ruleId: string,
  reason: string,
): AuthzDecision {
  out.allowed = allowed;
  out.policy = policy;
  out.ruleId = ruleId;
  out.reason = reason;
  return out;
}
