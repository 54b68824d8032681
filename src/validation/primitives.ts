/**
 * Checks of single values shared by every kind's validator. Each returns `undefined` when the
 * value is fine, or the reason (a sentence fragment) it is not.
 */
import { isIP } from 'node:net';
import RE2 from 're2';

/** Parses an Istio/protobuf duration (`1h`, `10s`, `1.5s`, `500ms`, `1m30s`) to milliseconds. */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string' || text.length === 0) return undefined;
  const re = /(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;
  const unitMs: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 1e-3,
    µs: 1e-3,
    ns: 1e-6,
  };
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * unitMs[m[2]!]!;
    pos = re.lastIndex;
  }
  return total;
}

/** Istio requires durations of at least 1 ms, with millisecond precision. */
export function checkDuration(text: unknown): string | undefined {
  if (typeof text !== 'string') return 'must be a duration string such as 10s or 500ms';
  const ms = parseDuration(text);
  if (ms === undefined)
    return `invalid duration ${JSON.stringify(text)}: use a number with a unit (h, m, s, ms), e.g. 10s, 1.5s, 500ms`;
  if (ms < 1) return `duration ${JSON.stringify(text)} is shorter than the 1ms minimum`;
  if (Math.abs(ms - Math.round(ms)) > 1e-9)
    return `duration ${JSON.stringify(text)} has sub-millisecond precision; only millisecond precision is supported`;
  return undefined;
}

export function checkPort(port: unknown): string | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    return `port number ${String(port)} must be in the range 1..65535`;
  return undefined;
}

export function checkPercent(value: unknown): string | undefined {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || value > 100)
    return `percentage ${String(value)} must be in the range [0, 100]`;
  return undefined;
}

export function checkHttpStatus(code: unknown): string | undefined {
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 200 || code > 599)
    return `HTTP status ${String(code)} must be in the range 200..599`;
  return undefined;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/i;

/** A DNS-1123 label (a Kubernetes object or port name). */
export function checkDnsLabel(name: string): string | undefined {
  if (name.length > 63 || !DNS_LABEL.test(name))
    return `${JSON.stringify(name)} is not a valid DNS label (letters, digits and '-', at most 63 characters, not starting or ending with '-')`;
  return undefined;
}

/**
 * A fully qualified domain name, optionally with a leading `*` wildcard label (`*.example.com`
 * or `*` alone when `allowBareWildcard`), or a short name (`reviews`) resolved against the
 * resource's namespace.
 */
export function checkHostname(host: unknown, opts: { allowBareWildcard?: boolean } = {}): string | undefined {
  if (typeof host !== 'string' || host.length === 0) return 'host must be a non-empty string';
  if (host === '*') return opts.allowBareWildcard ? undefined : `wildcard host "*" is not allowed here`;
  if (host.length > 255) return `host ${JSON.stringify(host)} is longer than 255 characters`;
  let rest = host;
  if (rest.startsWith('*.')) rest = rest.slice(2);
  else if (rest.startsWith('*')) rest = rest.slice(1); // Istio accepts `*foo.com` (label-prefix wildcard)
  if (rest.endsWith('.')) rest = rest.slice(0, -1);
  if (rest.includes('*')) return `host ${JSON.stringify(host)} has a wildcard that is not the leftmost label`;
  for (const label of rest.split('.')) {
    if (checkDnsLabel(label))
      return `host ${JSON.stringify(host)} has an invalid label ${JSON.stringify(label)}`;
  }
  return undefined;
}

/** An IPv4/IPv6 address or CIDR block. */
export function checkCidrOrIp(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be an IP address or CIDR block';
  const [addr, bits, extra] = value.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined)
    return `${JSON.stringify(value)} is not a valid IP address or CIDR block`;
  if (bits !== undefined) {
    const n = Number(bits);
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(bits) || n > max)
      return `${JSON.stringify(value)} has an invalid prefix length (0..${max})`;
  }
  return undefined;
}

const MAX_REGEX_LENGTH = 1024;

/**
 * Validates a user regex as RE2 (Envoy's dialect). RE2 refuses lookaround and backreferences,
 * which is exactly what makes user-supplied regexes safe to run on the proxy's hot path.
 */
export function checkRegex(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return 'regex must be a string';
  if (pattern.length === 0) return 'regex must not be empty';
  if (pattern.length > MAX_REGEX_LENGTH) return `regex is longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RE2(pattern, 'u');
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return `${JSON.stringify(pattern)} is not a valid RE2 regex (${reason.replace(/^invalid (regular expression|argument): /i, '')}); lookaround and backreferences are not supported`;
  }
  return undefined;
}

const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** An HTTP header name a rule may match or change: a token, not a pseudo-header, not Host. */
export function checkHeaderName(name: string, opts: { allowHost?: boolean } = {}): string | undefined {
  if (name.startsWith(':')) return `pseudo-header ${JSON.stringify(name)} cannot be used here`;
  if (!HEADER_TOKEN.test(name)) return `${JSON.stringify(name)} is not a valid HTTP header name`;
  if (!opts.allowHost && name.toLowerCase() === 'host')
    return 'the Host header cannot be used here; use authority instead';
  return undefined;
}

/** Kubernetes label key (optional DNS prefix + name) and value syntax. */
export function checkLabel(key: string, value: unknown): string | undefined {
  const parts = key.split('/');
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  if (parts.length > 2 || (parts.length === 2 && checkHostname(parts[0]!)))
    return `label key ${JSON.stringify(key)} has an invalid prefix`;
  if (name.length === 0 || name.length > 63 || !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name))
    return `label key ${JSON.stringify(key)} is not a valid label name`;
  if (
    typeof value !== 'string' ||
    value.length > 63 ||
    !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(value)
  )
    return `label ${JSON.stringify(key)} has an invalid value ${JSON.stringify(value)}`;
  return undefined;
}
