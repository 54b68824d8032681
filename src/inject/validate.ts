/**
 * Parsers for annotation values. Each returns either the parsed value or an error message; callers attach
 * the annotation name and raw value so users see exactly which setting is wrong.
 */
import { isIP } from 'node:net';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(message: string): Parsed<T> => ({ ok: false, message });

function items(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `*` (when allowed) or a comma-separated list of ports 1-65535; empty means none. */
export function parsePortList(value: string, allowStar: boolean): Parsed<'*' | number[]> {
  if (value.trim() === '*') return allowStar ? ok('*') : fail('"*" is not allowed here; list ports');
  const out: number[] = [];
  for (const item of items(value)) {
    if (!/^\d+$/.test(item)) return fail(`"${item}" is not a port number`);
    const n = Number(item);
    if (n < 1 || n > 65535) return fail(`port ${item} is outside 1-65535`);
    if (!out.includes(n)) out.push(n);
  }
  return ok(out);
}

/** `*` (when allowed) or a comma-separated list of IPv4/IPv6 CIDRs; empty means none. */
export function parseCidrList(value: string, allowStar: boolean): Parsed<string> {
  if (value.trim() === '*') return allowStar ? ok('*') : fail('"*" is not allowed here; list CIDRs');
  const out: string[] = [];
  for (const item of items(value)) {
    const slash = item.indexOf('/');
    if (slash < 0) return fail(`"${item}" is not a CIDR (expected address/prefix, e.g. 10.0.0.0/8)`);
    const family = isIP(item.slice(0, slash));
    const prefix = item.slice(slash + 1);
    if (family === 0) return fail(`"${item}" does not start with an IP address`);
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(prefix) || Number(prefix) > max) return fail(`"${item}" has an invalid prefix length`);
    out.push(item);
  }
  return ok(out.join(','));
}

/** Go's strconv.ParseBool, which Istio uses for boolean annotations. */
export function parseBool(value: string): Parsed<boolean> {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return ok(true);
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return ok(false);
  return fail('expected true or false');
}

const QUANTITY = /^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;
const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** A non-negative Kubernetes resource quantity (`100m`, `1.5`, `128Mi`, `1e3`), as a number for comparing. */
export function parseQuantity(value: string): Parsed<number> {
  const m = QUANTITY.exec(value.trim());
  if (!m) return fail('not a Kubernetes quantity (e.g. 100m, 2, 128Mi, 1Gi)');
  const base = Number(m[1]);
  const suffix = m[3] ?? '';
  if (suffix === '') return ok(base);
  if (/^[eE]/.test(suffix)) return ok(base * 10 ** Number(suffix.slice(1)));
  return ok(base * (BINARY[suffix] ?? DECIMAL[suffix] ?? 1));
}

/** An image reference: non-empty, no whitespace (the registry validates the rest). */
export function parseImage(value: string): Parsed<string> {
  if (value === '' || /\s/.test(value)) return fail('not an image reference');
  return ok(value);
}
