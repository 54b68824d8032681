/**
 * Route matching compiled once per config version: each matcher is a small object with its
 * kind resolved and regexes compiled (RE2); per request only comparisons run.
 */
import { compileAnchored, type Re2, type RouteMatch, type StringMatch } from '../../tables/index.js';
import type { RequestView } from './request-view.js';

const EXACT = 0;
const PREFIX = 1;
const SUFFIX = 2;
const REGEX = 3;

export class StringMatcher {
  readonly kind: number;
  readonly value: string;
  readonly re: Re2 | null;
  readonly ignoreCase: boolean;

  constructor(m: StringMatch, ignoreCase = false) {
    this.ignoreCase = ignoreCase;
    this.re = null;
    if (m.regex !== undefined) {
      this.kind = REGEX;
      this.value = m.regex;
      this.re = compileAnchored(m.regex);
    } else if (m.prefix !== undefined) {
      this.kind = PREFIX;
      this.value = ignoreCase ? m.prefix.toLowerCase() : m.prefix;
    } else if (m.suffix !== undefined) {
      this.kind = SUFFIX;
      this.value = ignoreCase ? m.suffix.toLowerCase() : m.suffix;
    } else {
      this.kind = EXACT;
      this.value = ignoreCase ? (m.exact ?? '').toLowerCase() : (m.exact ?? '');
    }
  }

  get isPrefix(): boolean {
    return this.kind === PREFIX;
  }

  /** `s` must already be lowercased when the matcher ignores case. */
  test(s: string): boolean {
    switch (this.kind) {
      case EXACT:
        return s.length === this.value.length && s === this.value;
      case PREFIX:
        return s.startsWith(this.value);
      case SUFFIX:
        return s.endsWith(this.value);
      default:
        return this.re!.test(s);
    }
  }
}

class HeaderMatcher {
  constructor(
    readonly name: string,
    readonly match: StringMatcher | null,
  ) {}

  /** True when the header is present and (if a matcher is set) its value matches. */
  test(view: RequestView): boolean {
    const v = view.header(this.name);
    if (v === undefined) return false;
    return this.match === null || this.match.test(v);
  }
}

class QueryMatcher {
  constructor(
    readonly name: string,
    readonly match: StringMatcher | null,
  ) {}

  test(view: RequestView): boolean {
    const v = view.queryParam(this.name);
    if (v === undefined) return false;
    return this.match === null || this.match.test(v);
  }
}

/** One compiled HTTPMatchRequest; every present condition must hold. */
export class RouteMatcher {
  readonly path: StringMatcher | null;
  readonly pathIgnoreCase: boolean;
  readonly method: StringMatcher | null;
  readonly authority: StringMatcher | null;
  readonly port: number;
  readonly headers: readonly HeaderMatcher[];
  readonly withoutHeaders: readonly HeaderMatcher[];
  readonly queryParams: readonly QueryMatcher[];

  constructor(m: RouteMatch | undefined) {
    // Envoy's ignore_case applies to exact/prefix/suffix, not regex (regex has (?i)).
    const ic = m?.ignoreCase === true && m.path?.regex === undefined;
    this.pathIgnoreCase = ic;
    this.path = m?.path ? new StringMatcher(m.path, ic) : null;
    this.method = m?.method ? new StringMatcher(m.method) : null;
    this.authority = m?.authority ? new StringMatcher(m.authority) : null;
    this.port = m?.port ?? 0;
    const header = (h: { name: string; match?: StringMatch }) =>
      new HeaderMatcher(h.name.toLowerCase(), h.match ? new StringMatcher(h.match) : null);
    this.headers = (m?.headers ?? []).map(header);
    this.withoutHeaders = (m?.withoutHeaders ?? []).map(header);
    this.queryParams = (m?.queryParams ?? []).map(
      (q) => new QueryMatcher(q.name, q.match ? new StringMatcher(q.match) : null),
    );
  }

  matches(view: RequestView): boolean {
    if (this.port !== 0 && view.port !== this.port) return false;
    if (this.path !== null && !this.path.test(this.pathIgnoreCase ? view.lowerPath : view.path)) return false;
    if (this.method !== null && !this.method.test(view.method)) return false;
    if (this.authority !== null && !this.authority.test(view.authority)) return false;
    for (let i = 0; i < this.headers.length; i++) if (!this.headers[i]!.test(view)) return false;
    for (let i = 0; i < this.withoutHeaders.length; i++) if (this.withoutHeaders[i]!.test(view)) return false;
    for (let i = 0; i < this.queryParams.length; i++) if (!this.queryParams[i]!.test(view)) return false;
    return true;
  }

  /** Length of the matched prefix, for prefix rewrites (0 when the path is not a prefix match). */
  get prefixLength(): number {
    return this.path?.isPrefix ? this.path.value.length : 0;
  }
}
