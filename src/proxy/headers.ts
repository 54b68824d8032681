/**
 * Helpers over flat header arrays (`[name, value, name, value, ...]`, node's rawHeaders
 * shape). The proxy keeps headers flat end to end: no per-request objects or lowercase maps.
 */

/** Value of header `lower` (a lowercase name) in a raw array; duplicates are joined by ", ". */
export function getHeader(raw: readonly string[], lower: string): string | undefined {
  let out: string | undefined;
  const len = lower.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === len && (name === lower || name.toLowerCase() === lower)) {
      out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
    }
  }
  return out;
}

export function hasHeader(raw: readonly string[], lower: string): boolean {
  const len = lower.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === len && (name === lower || name.toLowerCase() === lower)) return true;
  }
  return false;
}

/** Removes every occurrence of header `lower` in place. */
export function removeHeader(raw: string[], lower: string): void {
  const len = lower.length;
  let w = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === len && (name === lower || name.toLowerCase() === lower)) continue;
    raw[w++] = name;
    raw[w++] = raw[i + 1]!;
  }
  raw.length = w;
}

export function setHeader(raw: string[], lower: string, value: string): void {
  removeHeader(raw, lower);
  raw.push(lower, value);
}

/** Compiled header operations: remove, then set, then add (Envoy's order). */
export class HeaderOpsPlan {
  readonly remove: readonly string[];
  readonly set: readonly string[];
  readonly add: readonly string[];
  readonly empty: boolean;

  constructor(ops?: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] }) {
    this.remove = (ops?.remove ?? []).map((n) => n.toLowerCase());
    this.set = flat(ops?.set);
    this.add = flat(ops?.add);
    this.empty = this.remove.length === 0 && this.set.length === 0 && this.add.length === 0;
  }

  apply(raw: string[]): void {
    if (this.empty) return;
    for (const name of this.remove) removeHeader(raw, name);
    for (let i = 0; i < this.set.length; i += 2) setHeader(raw, this.set[i]!, this.set[i + 1]!);
    for (let i = 0; i < this.add.length; i += 2) raw.push(this.add[i]!, this.add[i + 1]!);
  }
}

function flat(map?: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(map ?? {})) out.push(k.toLowerCase(), v);
  return out;
}

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) and ones undici manages itself; they are never copied
 * between the downstream and upstream connections.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'upgrade',
  'trailer',
  'proxy-authorization',
  'proxy-authenticate',
  'expect',
]);
const HOP_LENGTHS = new Set([...HOP_BY_HOP].map((h) => h.length));

export function isHopByHop(name: string): boolean {
  return HOP_LENGTHS.has(name.length) && HOP_BY_HOP.has(name.toLowerCase());
}
