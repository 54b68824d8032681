/** Semantic rules for RequestAuthentication beyond its schema (Galley's checks, with field paths). */
import { at, type Findings } from '../findings.js';
import { checkDuration, checkHeaderName } from '../primitives.js';
import { checkPolicyScope, type Dict, isObject, list, report } from './common.js';
import type { ValidationContext } from './index.js';

/** Header names Istio accepts for claim headers (ValidateStrictHTTPHeaderName). */
const STRICT_HEADER = /^[-_A-Za-z0-9]+$/;
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An http(s) URL with a host, as Istio's ParseJwksURI requires. */
export function checkJwksUri(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `jwksUri ${JSON.stringify(uri)} is not a valid URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `jwksUri scheme ${JSON.stringify(url.protocol.replace(/:$/, ''))} is not supported; use https (or http)`;
  if (url.hostname === '') return `jwksUri ${JSON.stringify(uri)} has no host`;
  return undefined;
}

/**
 * An inline JWKS: JSON holding a key set (`{"keys": [...]}`) or one JSON Web Key, every key with
 * a `kty` (what Istio's JWK parser accepts).
 */
export function checkJwks(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return `jwks is not valid JSON (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!isObject(doc)) return 'jwks must be a JSON object: a key set {"keys": [...]} or a single JSON Web Key';
  if (doc.keys === undefined) {
    return typeof doc.kty === 'string'
      ? undefined
      : 'jwks must be a JSON Web Key Set ({"keys": [...]}) or a single JSON Web Key with a "kty"';
  }
  if (!Array.isArray(doc.keys)) return 'jwks "keys" must be a list of JSON Web Keys';
  if (doc.keys.length === 0) return 'jwks has no keys, so no token could ever be verified';
  const bad = doc.keys.findIndex((k) => !isObject(k) || typeof k.kty !== 'string' || k.kty === '');
  if (bad >= 0) return `jwks key ${bad} is not a JSON Web Key (it needs a "kty" such as RSA or EC)`;
  return undefined;
}

/** A header the proxy writes from the verified token: a valid name, not a pseudo-header, not Host. */
function checkOutputHeader(name: string): string | undefined {
  if (name.toLowerCase() === 'host')
    return 'the Host header cannot be written from a JWT; choose another header name';
  return checkHeaderName(name);
}

function checkJwtRule(f: Findings, path: string, rule: Dict): void {
  const issuer = typeof rule.issuer === 'string' ? rule.issuer : '';
  const jwksUri = typeof rule.jwksUri === 'string' ? rule.jwksUri : '';
  if (issuer === '' && jwksUri === '')
    f.error(at(path, 'issuer'), 'issuer is required (or at least a jwksUri)');
  else if (issuer === '')
    f.warn(at(path, 'issuer'), 'no issuer: tokens from any issuer signed by these keys are accepted');

  list(rule.audiences).forEach((a, i) => {
    if (a === '') f.error(at(at(path, 'audiences'), i), 'audience must be a non-empty string');
  });

  if (jwksUri !== '') {
    report(f, at(path, 'jwksUri'), checkJwksUri(jwksUri));
    if (jwksUri.startsWith('http://'))
      f.warn(
        at(path, 'jwksUri'),
        'the key set is fetched over plain http; use https so it cannot be tampered with',
      );
  }
  if (typeof rule.jwks === 'string') {
    if (rule.jwks === '') f.error(at(path, 'jwks'), 'jwks must not be empty; remove it to use jwksUri');
    else report(f, at(path, 'jwks'), checkJwks(rule.jwks));
    if (jwksUri !== '')
      f.warn(at(path, 'jwksUri'), 'jwksUri is ignored when jwks is set; set only one of them');
  }

  list(rule.fromHeaders).forEach((h, i) => {
    const p = at(at(path, 'fromHeaders'), i);
    if (!isObject(h)) return;
    if (typeof h.name !== 'string' || h.name === '') f.error(at(p, 'name'), 'header name is required');
    else if (!HEADER_TOKEN.test(h.name.replace(/^:/, '')))
      f.error(at(p, 'name'), `${JSON.stringify(h.name)} is not a valid HTTP header name`);
  });
  list(rule.fromParams).forEach((q, i) => {
    if (q === '') f.error(at(at(path, 'fromParams'), i), 'query parameter name must be a non-empty string');
  });
  list(rule.fromCookies).forEach((c, i) => {
    if (c === '') f.error(at(at(path, 'fromCookies'), i), 'cookie name must be a non-empty string');
  });

  if (typeof rule.outputPayloadToHeader === 'string') {
    const p = at(path, 'outputPayloadToHeader');
    if (rule.outputPayloadToHeader === '')
      f.error(p, 'header name must not be empty; remove the field instead');
    else report(f, p, checkOutputHeader(rule.outputPayloadToHeader));
  }

  const seen = new Set<string>();
  list(rule.outputClaimToHeaders).forEach((c, i) => {
    const p = at(at(path, 'outputClaimToHeaders'), i);
    if (!isObject(c)) return;
    if (typeof c.claim !== 'string' || c.claim === '') f.error(at(p, 'claim'), 'claim is required');
    if (typeof c.header !== 'string' || c.header === '') {
      f.error(at(p, 'header'), 'header is required');
      return;
    }
    const reason =
      checkOutputHeader(c.header) ??
      (STRICT_HEADER.test(c.header)
        ? undefined
        : `${JSON.stringify(c.header)} is not a valid header name here (letters, digits, '-' and '_' only)`);
    report(f, at(p, 'header'), reason);
    const lower = c.header.toLowerCase();
    if (seen.has(lower))
      f.warn(at(p, 'header'), `header ${c.header} is written by an earlier claim too; the last one wins`);
    seen.add(lower);
  });

  if (rule.timeout !== undefined) report(f, at(path, 'timeout'), checkDuration(rule.timeout));
}

/**
 * - at most one of selector/targetRef/targetRefs; selector labels without wildcards;
 * - each JWT rule: an issuer (or jwksUri), an http(s) jwksUri, a jwks that is a JSON Web Key Set
 *   (a jwksUri next to it is ignored: a warning), non-empty token locations, valid
 *   claim-to-header names (no pseudo-headers, not Host), a valid timeout.
 */
export function validateRequestAuthentication(spec: Dict, f: Findings, ctx: ValidationContext): void {
  checkPolicyScope(f, spec, ctx.namespace);
  list(spec.jwtRules).forEach((r, i) => {
    if (isObject(r)) checkJwtRule(f, at('spec.jwtRules', i), r);
  });
}
