/** Canonical JSON (sorted keys, Maps as sorted objects) and content hashes of it. */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return JSON.stringify(normalize(value));
}

function normalize(v: unknown): unknown {
  if (v instanceof Map) {
    const keys = [...v.keys()].map(String).sort();
    return Object.fromEntries(keys.map((k) => [k, normalize(v.get(k))]));
  }
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) if (o[k] !== undefined) out[k] = normalize(o[k]);
    return out;
  }
  return v;
}

/** Short hex SHA-256 of a string: used as config versions (16 hex chars = 64 bits). */
export function shortHash(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

interface MapLike<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
}

/** `map.get(key)`, creating and storing the value on a miss (memo tables of the compiler). */
export function getOrCreate<K, V>(map: MapLike<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}
