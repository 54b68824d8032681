/**
 * Value matchers of AuthorizationPolicy, compiled once per config version. One class with a
 * `kind` tag (stable shape, no closures) covers every form Istio generates:
 * - strings: exact, `prefix*`, `*suffix`, `*` (present and non-empty); case-insensitive hosts
 *   are lower-cased on both sides beforehand (compile time / once per request);
 * - glob (namespaces: Istio turns every `*` into `.*`);
 * - CIDR blocks, ports, path templates.
 */
import { Cidr, type IpFamily } from './ip.js';
import { PathTemplate } from './path.js';

export const M_EXACT = 0;
export const M_PREFIX = 1;
export const M_SUFFIX = 2;
export const M_PRESENT = 3;
export const M_GLOB = 4;
export const M_CIDR = 5;
export const M_PORT = 6;
export const M_TEMPLATE = 7;

export class Matcher {
  readonly kind: number;
  /** exact/prefix/suffix text. */
  readonly text: string;
  readonly port: number;
  readonly cidr: Cidr | null;
  readonly template: PathTemplate | null;
  /** Glob pieces between `*`s. */
  readonly pieces: string[] | null;
  /** The text ends in `:<port>` (hosts: such a value is compared with the full authority). */
  readonly hasPort: boolean;

  constructor(
    kind: number,
    text: string,
    opts: {
      port?: number;
      cidr?: Cidr;
      template?: PathTemplate;
      pieces?: string[];
    } = {},
  ) {
    this.kind = kind;
    this.text = text;
    this.port = opts.port ?? 0;
    this.cidr = opts.cidr ?? null;
    this.template = opts.template ?? null;
    this.pieces = opts.pieces ?? null;
    this.hasPort = /^\[[^\]]*\]:\d+$|^[^:[]*:\d+$/.test(text);
  }

  /** Istio's StringMatcher: `*` = non-empty, `*x` suffix, `x*` prefix, else exact. */
  static string(value: string): Matcher {
    if (value === '*') return new Matcher(M_PRESENT, '');
    if (value.startsWith('*')) return new Matcher(M_SUFFIX, value.slice(1));
    if (value.endsWith('*')) return new Matcher(M_PREFIX, value.slice(0, -1));
    return new Matcher(M_EXACT, value);
  }

  /** A path value: a template when it has `{*}`/`{**}`, else a string matcher. */
  static path(value: string): Matcher {
    if (PathTemplate.isTemplate(value))
      return new Matcher(M_TEMPLATE, value, { template: new PathTemplate(value) });
    return Matcher.string(value);
  }

  /** Every `*` matches any run of characters (Istio turns namespace values into a regex). */
  static glob(value: string): Matcher {
    if (!value.includes('*')) return new Matcher(M_EXACT, value);
    if (value === '*') return new Matcher(M_PRESENT, '');
    return new Matcher(M_GLOB, value, { pieces: value.split('*') });
  }

  static cidr(value: string): Matcher {
    return new Matcher(M_CIDR, value, { cidr: Cidr.parse(value) });
  }

  static port(value: string): Matcher {
    if (!/^\d+$/.test(value) || Number(value) > 65535)
      throw new Error(`invalid port ${JSON.stringify(value)}`);
    return new Matcher(M_PORT, value, { port: Number(value) });
  }

  /** Matches a present string value (callers handle "absent"). */
  matchString(v: string): boolean {
    switch (this.kind) {
      case M_EXACT:
        return v === this.text;
      case M_PREFIX:
        return v.length >= this.text.length && v.startsWith(this.text);
      case M_SUFFIX:
        return v.length >= this.text.length && v.endsWith(this.text);
      case M_PRESENT:
        return v.length > 0;
      case M_GLOB:
        return globMatch(this.pieces!, v);
      case M_TEMPLATE:
        return this.template!.matches(v);
      default:
        return false;
    }
  }

  /** Substring form for list-valued headers: does v[start, end) match? */
  matchRange(v: string, start: number, end: number): boolean {
    const len = end - start;
    switch (this.kind) {
      case M_EXACT:
        return len === this.text.length && v.startsWith(this.text, start);
      case M_PREFIX:
        return len >= this.text.length && v.startsWith(this.text, start);
      case M_SUFFIX:
        return len >= this.text.length && v.startsWith(this.text, end - this.text.length);
      case M_PRESENT:
        return true;
      default:
        return this.matchString(v.slice(start, end));
    }
  }

  matchIp(family: IpFamily, addr: Uint32Array): boolean {
    return this.cidr?.contains(family, addr) ?? false;
  }
}

function globMatch(pieces: string[], v: string): boolean {
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (!v.startsWith(first) || v.length < first.length + last.length) return false;
  let pos = first.length;
  const end = v.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const at = v.indexOf(pieces[i]!, pos);
    if (at < 0 || at + pieces[i]!.length > end) return false;
    pos = at + pieces[i]!.length;
  }
  return v.endsWith(last);
}

/** OR over matchers for a present string value. */
export function anyString(ms: readonly Matcher[], v: string): boolean {
  for (let i = 0; i < ms.length; i++) if (ms[i]!.matchString(v)) return true;
  return false;
}
