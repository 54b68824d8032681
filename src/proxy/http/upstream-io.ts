/**
 * Small pieces of the upstream side of an exchange, kept apart so exchange.ts stays a
 * readable state machine: copying response headers and firing mirror requests.
 */
import { isHopByHop } from '../headers.js';
import type { CompiledForward } from '../router/compiled.js';
import { DISCARD_HANDLER, type RawHeaders } from './attempt.js';

/**
 * Copies undici's raw response headers into `out` as strings, dropping hop-by-hop ones.
 * Returns the Content-Length, or -1 when absent.
 */
export function copyResponseHeaders(raw: RawHeaders, out: string[]): number {
  let contentLength = -1;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    const name = typeof n === 'string' ? n : n.toString('latin1');
    if (isHopByHop(name)) continue;
    const v = raw[i + 1]!;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    if (name.length === 14 && name.toLowerCase() === 'content-length') contentLength = Number(value);
    out.push(name, value);
  }
  return contentLength;
}

/** Response trailers as strings (null when there are none). */
export function copyTrailers(raw: RawHeaders | null): string[] | null {
  if (raw === null || raw.length === 0) return null;
  const out: string[] = [];
  for (const x of raw) out.push(typeof x === 'string' ? x : x.toString('latin1'));
  return out;
}

/**
 * Fire-and-forget copies to the mirror clusters (Envoy's request_mirror_policies): Host gets
 * a `-shadow` suffix, responses are discarded, failures are ignored.
 */
export function sendMirrors(
  mirrors: CompiledForward['mirrors'],
  method: string,
  path: string,
  headers: readonly string[],
  body: Buffer | null,
): void {
  for (const m of mirrors) {
    if (m.percentage < 100 && Math.random() * 100 >= m.percentage) continue;
    const ep = m.cluster.pick();
    if (ep === undefined) continue;
    const copy = headers.slice();
    for (let i = 0; i < copy.length; i += 2) {
      if (copy[i] === 'host') copy[i + 1] = `${copy[i + 1]}-shadow`;
    }
    ep.pool.dispatch({ path, method, headers: copy, body }, DISCARD_HANDLER);
  }
}
