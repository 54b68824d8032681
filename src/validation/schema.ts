/**
 * Structural validation of a spec against its kind's schema (ajv, compiled once per kind),
 * with ajv's errors turned into field-path findings a person can act on.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { KindInfo } from '../api/kinds.js';
import type { Findings } from './findings.js';

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false });
ajv.addFormat('int32', { type: 'number', validate: (n: number) => n >= -2147483648 && n <= 2147483647 });
ajv.addFormat('double', true);
ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields' });
ajv.addKeyword({
  keyword: 'x-kubernetes-int-or-string',
  validate: (_: unknown, data: unknown) => typeof data === 'string' || Number.isInteger(data),
  errors: false,
});

const compiled = new WeakMap<KindInfo, ValidateFunction>();

function validatorFor(kind: KindInfo): ValidateFunction {
  let fn = compiled.get(kind);
  if (!fn) {
    fn = ajv.compile(kind.spec);
    compiled.set(kind, fn);
  }
  return fn;
}

/**
 * `/http/0/route/1/weight` -> `spec.http[0].route[1].weight`. Walks the data alongside, so a
 * numeric map key (`portLevelMtls: {"9080": ...}`) is written as a key, not an index.
 */
function toPath(base: string, pointer: string, data: unknown): string {
  let path = base;
  let node = data;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) path += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) path += `.${seg}`;
    else path += `[${JSON.stringify(seg)}]`;
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return path;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function describeType(data: unknown): string {
  if (data === null) return 'null';
  if (Array.isArray(data)) return 'a list';
  if (typeof data === 'object') return 'an object';
  return `${typeof data} ${JSON.stringify(data)}`;
}

function message(err: ErrorObject): { path: string; text: string } {
  const path = err.instancePath;
  switch (err.keyword) {
    case 'additionalProperties': {
      const field = String(err.params.additionalProperty);
      const known = Object.keys((err.parentSchema as { properties?: object })?.properties ?? {});
      const guess = closest(field, known);
      const hint = guess
        ? ` (did you mean "${guess}"?)`
        : known.length
          ? ` (known fields: ${known.join(', ')})`
          : '';
      return {
        path: `${path}/${field.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        text: `unknown field${hint}`,
      };
    }
    case 'type': {
      const expected = String(err.params.type);
      const article = /^[aeiou]/.test(expected) ? 'an' : 'a';
      const noun =
        expected === 'array' ? 'a list' : expected === 'object' ? 'an object' : `${article} ${expected}`;
      return { path, text: `must be ${noun}, got ${describeType(err.data)}` };
    }
    case 'enum':
      return {
        path,
        text: `must be one of ${(err.params.allowedValues as unknown[]).join(', ')}, got ${JSON.stringify(err.data)}`,
      };
    case 'minimum':
      return { path, text: `must be >= ${err.params.limit}` };
    case 'maximum':
      return { path, text: `must be <= ${err.params.limit}` };
    case 'format':
      return {
        path,
        text: err.params.format === 'int32' ? 'must be a 32-bit integer' : `must be ${err.params.format}`,
      };
    case 'required':
      return { path, text: `missing required field "${err.params.missingProperty}"` };
    default:
      return { path, text: err.message ?? 'is invalid' };
  }
}

/** Adds a finding for each way `spec` does not fit the kind's schema. */
export function checkSchema(kind: KindInfo, spec: unknown, findings: Findings): void {
  const validate = validatorFor(kind);
  if (validate(spec)) return;
  const seen = new Set<string>();
  for (const err of validate.errors ?? []) {
    const { path, text } = message(err);
    const full = toPath('spec', path, spec);
    const key = `${full}\u0000${text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    findings.error(full, text);
  }
}
