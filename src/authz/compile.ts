/**
 * Compiles AuthorizationPolicies (compiled-config form, src/tables/security.ts) into flat rule
 * objects evaluated by engine.ts. Mirrors Istio's model (pilot/pkg/security/authz/model):
 * - a rule matches when all `when` conditions match, any `from` source matches (none = any)
 *   and any `to` operation matches (none = any); inside a source/operation every set field must
 *   match; inside a field any value matches (`values`), and no `notValues` value may match;
 * - an absent attribute (no mTLS principal, no JWT, missing header) never matches a value, so
 *   it always satisfies a `not*` field;
 * - for plain TCP, each policy gets a second rule list: for ALLOW, a rule using any HTTP-only
 *   field (hosts, methods, paths, requestPrincipals, request.headers, request.auth.*) is dropped
 *   (it can never allow a connection); for DENY, AUDIT and CUSTOM only those fields are dropped
 *   from the rule, which makes the rule wider (Istio's `checkError`: "more likely to deny").
 */
import type { AuthzCondition, AuthzOperation, AuthzPolicy, AuthzSource } from '../tables/security.js';
import { Matcher } from './match.js';

export const F_PRINCIPAL = 0;
export const F_REQUEST_PRINCIPAL = 1;
export const F_NAMESPACE = 2;
export const F_SERVICE_ACCOUNT = 3;
export const F_SOURCE_IP = 4;
export const F_REMOTE_IP = 5;
export const F_HOST = 6;
export const F_METHOD = 7;
export const F_PATH = 8;
export const F_PORT = 9;
export const F_DEST_IP = 10;
export const F_SNI = 11;
export const F_HEADER = 12;
export const F_CLAIM = 13;
/** A key the proxy cannot evaluate (experimental.envoy.filters.*): fixed result, see `fixed`. */
export const F_FIXED = 14;

const HTTP_ONLY = new Set([F_REQUEST_PRINCIPAL, F_HOST, F_METHOD, F_PATH, F_HEADER, F_CLAIM]);

export interface Account {
  ns: string;
  sa: string;
}

/** One field (or `when` condition) of a rule. */
export class Check {
  readonly kind: number;
  readonly values: Matcher[];
  readonly notValues: Matcher[];
  /** Lower-case header name (F_HEADER). */
  readonly header: string;
  /** Claim path (F_CLAIM), e.g. ['aud'] or ['groups'] or ['a', 'b']. */
  readonly claimPath: string[];
  /** `<ns>` / `<sa>` pairs (F_SERVICE_ACCOUNT): any must match / none may match. */
  readonly accounts: Account[];
  readonly notAccounts: Account[];
  /** F_FIXED: the constant result. */
  readonly fixed: boolean;
  readonly httpOnly: boolean;

  constructor(
    kind: number,
    values: Matcher[],
    notValues: Matcher[],
    extra: {
      header?: string;
      claimPath?: string[];
      accounts?: Account[];
      notAccounts?: Account[];
      fixed?: boolean;
    } = {},
  ) {
    this.kind = kind;
    this.values = values;
    this.notValues = notValues;
    this.header = extra.header ?? '';
    this.claimPath = extra.claimPath ?? [];
    this.accounts = extra.accounts ?? [];
    this.notAccounts = extra.notAccounts ?? [];
    this.fixed = extra.fixed ?? false;
    this.httpOnly = HTTP_ONLY.has(kind);
  }
}

/** One Istio rule: AND(when) AND OR(sources: AND checks) AND OR(operations: AND checks). */
export class CompiledRule {
  /** `ns[<ns>]-policy[<name>]-rule[<i>]`, Istio's policy id in Envoy metadata and logs. */
  readonly id: string;
  readonly when: Check[];
  /** Empty = any source. */
  readonly sources: Check[][];
  /** Empty = any operation. */
  readonly operations: Check[][];

  constructor(id: string, when: Check[], sources: Check[][], operations: Check[][]) {
    this.id = id;
    this.when = when;
    this.sources = sources;
    this.operations = operations;
  }
}

export class CompiledPolicy {
  readonly name: string;
  readonly namespace: string;
  /** `<namespace>/<name>`. */
  readonly key: string;
  readonly action: AuthzPolicy['action'];
  readonly provider: string;
  readonly dryRun: boolean;
  readonly http: CompiledRule[];
  readonly tcp: CompiledRule[];
  /** Precomputed decision texts (no string building per request). */
  readonly reason: string;

  constructor(p: AuthzPolicy, http: CompiledRule[], tcp: CompiledRule[]) {
    this.name = p.name;
    this.namespace = p.namespace;
    this.key = `${p.namespace}/${p.name}`;
    this.action = p.action;
    this.provider = p.provider ?? '';
    this.dryRun = p.dryRun ?? false;
    this.http = http;
    this.tcp = tcp;
    this.reason =
      p.action === 'DENY'
        ? `denied by DENY policy ${this.key}`
        : p.action === 'CUSTOM'
          ? `denied: CUSTOM policy ${this.key} uses extension provider "${this.provider}", which isthmus does not support`
          : p.action === 'ALLOW'
            ? `allowed by ALLOW policy ${this.key}`
            : `audited by AUDIT policy ${this.key}`;
  }
}

export class AuthzCompileError extends Error {
  readonly code = 'AUTHZ_BAD_POLICY';
  readonly path: string;
  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

type MakeMatcher = (v: string) => Matcher;
const str: MakeMatcher = (v) => Matcher.string(v);
/** Hosts compare case-insensitively: matcher text lower-cased here, the request host once per request. */
const host: MakeMatcher = (v) => Matcher.string(v.toLowerCase());

function matchers(path: string, values: readonly string[] | undefined, make: MakeMatcher): Matcher[] {
  if (!values) return [];
  return values.map((v, i) => {
    try {
      return make(v);
    } catch (err) {
      throw new AuthzCompileError(`${path}[${i}]`, err instanceof Error ? err.message : String(err));
    }
  });
}

function field(
  out: Check[],
  path: string,
  kind: number,
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  make: MakeMatcher,
  name: [string, string],
): void {
  if (!values?.length && !notValues?.length) return;
  out.push(
    new Check(
      kind,
      matchers(`${path}.${name[0]}`, values, make),
      matchers(`${path}.${name[1]}`, notValues, make),
    ),
  );
}

function accounts(values: readonly string[] | undefined, policyNs: string): Account[] {
  return (values ?? []).map((v) => {
    const slash = v.indexOf('/');
    return slash < 0 ? { ns: policyNs, sa: v } : { ns: v.slice(0, slash), sa: v.slice(slash + 1) };
  });
}

function compileSource(s: AuthzSource, path: string, policyNs: string): Check[] {
  const out: Check[] = [];
  field(out, path, F_PRINCIPAL, s.principals, s.notPrincipals, str, ['principals', 'notPrincipals']);
  field(out, path, F_REQUEST_PRINCIPAL, s.requestPrincipals, s.notRequestPrincipals, str, [
    'requestPrincipals',
    'notRequestPrincipals',
  ]);
  field(out, path, F_NAMESPACE, s.namespaces, s.notNamespaces, Matcher.glob, ['namespaces', 'notNamespaces']);
  field(out, path, F_SOURCE_IP, s.ipBlocks, s.notIpBlocks, Matcher.cidr, ['ipBlocks', 'notIpBlocks']);
  field(out, path, F_REMOTE_IP, s.remoteIpBlocks, s.notRemoteIpBlocks, Matcher.cidr, [
    'remoteIpBlocks',
    'notRemoteIpBlocks',
  ]);
  if (s.serviceAccounts?.length || s.notServiceAccounts?.length)
    out.push(serviceAccountCheck(s.serviceAccounts, s.notServiceAccounts, policyNs));
  return out;
}

function compileOperation(o: AuthzOperation, path: string): Check[] {
  const out: Check[] = [];
  field(out, path, F_HOST, o.hosts, o.notHosts, host, ['hosts', 'notHosts']);
  field(out, path, F_METHOD, o.methods, o.notMethods, str, ['methods', 'notMethods']);
  field(out, path, F_PATH, o.paths, o.notPaths, Matcher.path, ['paths', 'notPaths']);
  field(out, path, F_PORT, o.ports, o.notPorts, Matcher.port, ['ports', 'notPorts']);
  return out;
}

const PLAIN: Record<string, [number, MakeMatcher]> = {
  'source.ip': [F_SOURCE_IP, Matcher.cidr],
  'remote.ip': [F_REMOTE_IP, Matcher.cidr],
  'source.namespace': [F_NAMESPACE, Matcher.glob],
  'source.principal': [F_PRINCIPAL, str],
  'request.auth.principal': [F_REQUEST_PRINCIPAL, str],
  'destination.ip': [F_DEST_IP, Matcher.cidr],
  'destination.port': [F_PORT, Matcher.port],
  'connection.sni': [F_SNI, str],
};

/** `[a][b]` -> ['a', 'b']. */
function bracketed(rest: string, path: string): string[] {
  const names: string[] = [];
  const re = /\[([^[\]]+)\]/y;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) throw new AuthzCompileError(path, `malformed key suffix ${JSON.stringify(rest)}`);
    names.push(m[1]!);
    pos = re.lastIndex;
  }
  if (names.length === 0) throw new AuthzCompileError(path, 'missing [name]');
  return names;
}

function serviceAccountCheck(
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  policyNs: string,
): Check {
  return new Check(F_SERVICE_ACCOUNT, [], [], {
    accounts: accounts(values, policyNs),
    notAccounts: accounts(notValues, policyNs),
  });
}

function compileCondition(c: AuthzCondition, path: string, action: string, policyNs: string): Check {
  const k = c.key;
  const plain = PLAIN[k];
  const vp = `${path}.values`;
  const np = `${path}.notValues`;
  if (plain)
    return new Check(plain[0], matchers(vp, c.values, plain[1]), matchers(np, c.notValues, plain[1]));
  if (k === 'source.serviceAccount') return serviceAccountCheck(c.values, c.notValues, policyNs);
  if (k === 'request.auth.audiences' || k === 'request.auth.presenter') {
    const claim = k === 'request.auth.audiences' ? 'aud' : 'azp';
    return new Check(F_CLAIM, matchers(vp, c.values, str), matchers(np, c.notValues, str), {
      claimPath: [claim],
    });
  }
  if (k.startsWith('request.headers')) {
    const [name] = bracketed(k.slice('request.headers'.length), `${path}.key`);
    return new Check(F_HEADER, matchers(vp, c.values, str), matchers(np, c.notValues, str), {
      header: name!.toLowerCase(),
    });
  }
  if (k.startsWith('request.auth.claims')) {
    const claimPath = bracketed(k.slice('request.auth.claims'.length), `${path}.key`);
    return new Check(F_CLAIM, matchers(vp, c.values, str), matchers(np, c.notValues, str), { claimPath });
  }
  if (k.startsWith('experimental.envoy.filters.')) {
    // Envoy dynamic metadata does not exist here. Fail closed: such a condition never lets an
    // ALLOW rule match, and always lets a DENY/AUDIT/CUSTOM rule match.
    return new Check(F_FIXED, [], [], { fixed: action !== 'ALLOW' });
  }
  throw new AuthzCompileError(`${path}.key`, `unknown attribute ${JSON.stringify(k)}`);
}

function forTcp(rule: CompiledRule, action: string): CompiledRule | null {
  const all = [...rule.when, ...rule.sources.flat(), ...rule.operations.flat()];
  if (!all.some((c) => c.httpOnly)) return rule;
  if (action === 'ALLOW') return null;
  const keep = (cs: Check[]) => cs.filter((c) => !c.httpOnly);
  return new CompiledRule(rule.id, keep(rule.when), rule.sources.map(keep), rule.operations.map(keep));
}

/** Compiles one policy; throws AuthzCompileError (with a field path) on malformed values. */
export function compilePolicy(p: AuthzPolicy, path: string): CompiledPolicy {
  const http = p.rules.map((r, i) => {
    const rp = `${path}.rules[${i}]`;
    const when = (r.when ?? []).map((c, ci) =>
      compileCondition(c, `${rp}.when[${ci}]`, p.action, p.namespace),
    );
    const sources = (r.from ?? []).map((f, fi) =>
      compileSource(f.source, `${rp}.from[${fi}].source`, p.namespace),
    );
    const operations = (r.to ?? []).map((t, ti) =>
      compileOperation(t.operation, `${rp}.to[${ti}].operation`),
    );
    return new CompiledRule(`ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`, when, sources, operations);
  });
  const tcp: CompiledRule[] = [];
  for (const r of http) {
    const t = forTcp(r, p.action);
    if (t) tcp.push(t);
  }
  return new CompiledPolicy(p, http, tcp);
}
