/**
 * Request path normalization (Istio meshConfig.pathNormalization) and the `{*}`/`{**}` path
 * templates of AuthorizationPolicy `paths`.
 *
 * Normalization follows Istio's "Authorization Policy Normalization" reference. The normalized
 * path is what policies are evaluated against AND what the proxy forwards (as Istio does), so
 * the proxy calls `normalizeRequestTarget` once per request, before routing and authorization:
 * - NONE: nothing (the raw path is matched; vulnerable to `/a/../b` tricks, as in Istio).
 * - BASE (Istio's default): decode percent-encoded unreserved characters (`%2e` -> `.`,
 *   `%41` -> `A`, ...; once, no double decoding), `\` -> `/`, resolve `.` and `..` segments
 *   (RFC 3986 5.2.4).
 * - MERGE_SLASHES: BASE, then `//` -> `/`.
 * - DECODE_AND_MERGE_SLASHES: first `%2F` -> `/` and `%5C` -> `\`, then MERGE_SLASHES.
 * A `%00` anywhere in the path is rejected (400) in every mode. The query string is kept for
 * forwarding but never part of the path that policies see (`pathOf`).
 */
import type { PathNormalization } from '../tables/security.js';

/** Path part of a request target (everything before `?` or `#`). Allocates only when needed. */
export function pathOf(target: string): string {
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 63 || c === 35) return target.slice(0, i);
  }
  return target;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 48 && c <= 57) ||
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Cheap scan: does this path need any work under `mode`? */
function needsWork(path: string, mode: PathNormalization): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 || c === 92) return true; // '%' '\'
    if (c === 47 && i + 1 < path.length) {
      const n = path.charCodeAt(i + 1);
      if (n === 46) return true; // "/." (maybe a dot segment)
      if (n === 47 && mode !== 'BASE') return true; // "//"
    }
  }
  return path.length > 0 && path.charCodeAt(0) === 46;
}

function decode(path: string, decodeSlashes: boolean): string | null {
  let out = '';
  let last = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) !== 37) continue;
    const h = hex(path.charCodeAt(i + 1));
    const l = hex(path.charCodeAt(i + 2));
    if (h < 0 || l < 0) continue;
    const c = h * 16 + l;
    if (c === 0) return null;
    if (isUnreserved(c) || (decodeSlashes && (c === 47 || c === 92))) {
      out += path.slice(last, i) + String.fromCharCode(c);
      last = i + 3;
      i += 2;
    }
  }
  return last === 0 ? path : out + path.slice(last);
}

/** RFC 3986 5.2.4 remove_dot_segments on an absolute path. */
function removeDotSegments(path: string): string {
  const input = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const seg = input[i]!;
    const last = i === input.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/**
 * Normalizes a request target (path plus optional query) per `mode`. Returns the target to
 * route, authorize and forward, or null when the request must be rejected with 400.
 * Returns `target` itself (no allocation) when there is nothing to change.
 */
export function normalizeRequestTarget(target: string, mode: PathNormalization = 'BASE'): string | null {
  const path = pathOf(target);
  if (path.indexOf('%00') >= 0) return null;
  if (mode === 'NONE' || !needsWork(path, mode)) return target;
  let p = decode(path, mode === 'DECODE_AND_MERGE_SLASHES');
  if (p === null) return null;
  if (p.indexOf('\\') >= 0) p = p.replaceAll('\\', '/');
  if (p.charCodeAt(0) !== 47) p = `/${p}`;
  p = removeDotSegments(p);
  if (mode !== 'BASE') p = p.replace(/\/{2,}/g, '/');
  return path.length === target.length ? p : p + target.slice(path.length);
}

const ONE = 1;
const ANY = 2;

/** `[a-zA-Z0-9-._~%!$&'()+,;:@=]`: what Envoy's URI template lets `*`/`**` match (no `/`). */
function isTemplateChar(c: number): boolean {
  return (
    isUnreserved(c) ||
    c === 37 ||
    c === 33 ||
    c === 36 ||
    c === 38 ||
    c === 39 ||
    c === 40 ||
    c === 41 ||
    c === 43 ||
    c === 44 ||
    c === 59 ||
    c === 58 ||
    c === 64 ||
    c === 61
  );
}

/**
 * An Istio path template (`/foo/{*}/bar/{**}`), compiled once: `{*}` matches one non-empty
 * path segment, `{**}` zero or more characters including `/` (it must be the last operator,
 * which the validator enforces; literal text may follow it). No regex involved.
 */
export class PathTemplate {
  /** Literal strings and the ONE/ANY operators, in order. */
  private readonly parts: (string | number)[];
  /** Literal text after the `{**}` operator ('' if none), and whether there is a `{**}`. */
  private readonly anyTail: string;
  private readonly anyIndex: number;

  constructor(template: string) {
    const parts: (string | number)[] = [];
    let rest = template;
    for (;;) {
      const one = rest.indexOf('{*}');
      const any = rest.indexOf('{**}');
      if (one < 0 && any < 0) break;
      const isAny = any >= 0 && (one < 0 || any < one);
      const at = isAny ? any : one;
      if (at > 0) parts.push(rest.slice(0, at));
      parts.push(isAny ? ANY : ONE);
      rest = rest.slice(at + (isAny ? 4 : 3));
    }
    if (rest !== '') parts.push(rest);
    this.parts = parts;
    this.anyIndex = parts.indexOf(ANY);
    this.anyTail = this.anyIndex >= 0 ? parts.slice(this.anyIndex + 1).join('') : '';
  }

  /** Whether the template contains a template operator at all. */
  static isTemplate(path: string): boolean {
    return path.indexOf('{*}') >= 0 || path.indexOf('{**}') >= 0;
  }

  matches(path: string): boolean {
    const parts = this.parts;
    let pos = 0;
    const stop = this.anyIndex >= 0 ? this.anyIndex : parts.length;
    for (let i = 0; i < stop; i++) {
      const part = parts[i]!;
      if (typeof part === 'string') {
        if (!path.startsWith(part, pos)) return false;
        pos += part.length;
      } else {
        const start = pos;
        while (pos < path.length && isTemplateChar(path.charCodeAt(pos))) pos++;
        if (pos === start) return false;
      }
    }
    if (this.anyIndex < 0) return pos === path.length;
    const tail = this.anyTail;
    const end = path.length - tail.length;
    if (end < pos || !path.endsWith(tail)) return false;
    for (let i = pos; i < end; i++) {
      const c = path.charCodeAt(i);
      if (c !== 47 && !isTemplateChar(c)) return false;
    }
    return true;
  }
}
