/**
 * The only way user regexes are compiled: RE2 (linear time, no lookaround/backreferences),
 * fully anchored like Envoy's `safe_regex` (the pattern must match the whole value).
 */
import RE2 from 're2';

export const MAX_REGEX_LENGTH = 1024;

export type Re2 = InstanceType<typeof RE2>;

/** Compiles `pattern` anchored at both ends; throws with RE2's message when invalid. */
export function compileAnchored(pattern: string, ignoreCase = false): Re2 {
  if (pattern.length > MAX_REGEX_LENGTH) throw new Error(`regex longer than ${MAX_REGEX_LENGTH} characters`);
  return new RE2(`^(?:${pattern})$`, ignoreCase ? 'i' : '');
}

/** Compiles an unanchored pattern for substitutions (`pathRegex` rewrites); global flag set. */
export function compileForReplace(pattern: string): Re2 {
  if (pattern.length > MAX_REGEX_LENGTH) throw new Error(`regex longer than ${MAX_REGEX_LENGTH} characters`);
  return new RE2(pattern, 'g');
}

/**
 * Converts an Envoy/Istio substitution (`\1` group references) to the `$1` form of
 * String.prototype.replace, escaping literal `$`.
 */
export function toReplaceTemplate(substitution: string): string {
  let out = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i]!;
    const next = substitution[i + 1];
    if (c === '\\' && next !== undefined && next >= '0' && next <= '9') {
      out += `$${next}`;
      i++;
    } else if (c === '\\' && next === '\\') {
      out += '\\';
      i++;
    } else if (c === '$') {
      out += '$$';
    } else {
      out += c;
    }
  }
  return out;
}

/** Returns RE2's error message for an invalid pattern, or undefined when it compiles. */
export function regexError(pattern: string): string | undefined {
  try {
    compileAnchored(pattern);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
