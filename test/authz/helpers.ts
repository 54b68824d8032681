/** Builders for authorization tests: policies in compiled-table form and request attributes. */
import { AuthzAttributes, type AuthzDecision, AuthzEngine } from '../../src/authz/index.js';
import type { AuthzPolicy, AuthzRule } from '../../src/tables/security.js';

let seq = 0;

export function policy(
  action: AuthzPolicy['action'],
  rules: AuthzRule[],
  extra: Partial<AuthzPolicy> = {},
): AuthzPolicy {
  seq++;
  return { name: `p${seq}`, namespace: 'foo', action, rules, ...extra };
}

export const allow = (rules: AuthzRule[], extra?: Partial<AuthzPolicy>) => policy('ALLOW', rules, extra);
export const deny = (rules: AuthzRule[], extra?: Partial<AuthzPolicy>) => policy('DENY', rules, extra);
export const audit = (rules: AuthzRule[], extra?: Partial<AuthzPolicy>) => policy('AUDIT', rules, extra);

/** A plausible mTLS HTTP request from `cluster.local/ns/bar/sa/client`, overridable. */
export function request(over: Partial<Omit<AuthzAttributes, 'reset'>> = {}): AuthzAttributes {
  const a = new AuthzAttributes();
  a.sourceIp = '10.0.0.5';
  a.destinationIp = '10.0.1.7';
  a.destinationPort = 8080;
  a.sourcePrincipal = 'cluster.local/ns/bar/sa/client';
  a.method = 'GET';
  a.host = 'httpbin.foo.svc.cluster.local:8000';
  a.path = '/status/200';
  Object.assign(a, over);
  return a;
}

export function tcp(over: Partial<Omit<AuthzAttributes, 'reset'>> = {}): AuthzAttributes {
  return request({ tcp: true, method: '', host: '', path: '', ...over });
}

export function decide(policies: AuthzPolicy[], a: AuthzAttributes): AuthzDecision {
  return AuthzEngine.compile(policies).authorize(a);
}

/** allowed? for one set of policies. */
export function allowed(policies: AuthzPolicy[], a: AuthzAttributes): boolean {
  return decide(policies, a).allowed;
}
