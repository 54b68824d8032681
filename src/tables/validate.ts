/**
 * validateTables / validateEndpoints: schema (ajv, compiled once) then semantic checks.
 * Never throws on bad input; every error names the JSON path it is about, e.g.
 * `routeConfigs[0].virtualHosts[1].routes[2].forward.clusters[0].cluster`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type EndpointTable, EndpointTableSchema } from './clusters.js';
import { validateInboundSecurity } from './security.js';
import { checkEndpointsSemantics, checkTablesSemantics } from './semantics.js';
import { type ProxyTables, ProxyTablesSchema } from './tables.js';

export interface TableError {
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T; errors: [] } | { ok: false; errors: TableError[] };

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
let tablesValidator: ValidateFunction | undefined;
let endpointsValidator: ValidateFunction | undefined;

export function validateTables(json: unknown): Validated<ProxyTables> {
  tablesValidator ??= ajv.compile(ProxyTablesSchema);
  if (!tablesValidator(json)) return { ok: false, errors: toErrors(tablesValidator.errors) };
  const value = json as ProxyTables;
  const errors = checkTablesSemantics(value);
  if (value.security) {
    const security = validateInboundSecurity(value.security);
    if (!security.ok)
      for (const e of security.errors)
        errors.push({ path: e.path ? `security.${e.path}` : 'security', message: e.message });
  }
  return errors.length ? { ok: false, errors } : { ok: true, value, errors: [] };
}

export function validateEndpoints(json: unknown): Validated<EndpointTable> {
  endpointsValidator ??= ajv.compile(EndpointTableSchema);
  if (!endpointsValidator(json)) return { ok: false, errors: toErrors(endpointsValidator.errors) };
  const value = json as EndpointTable;
  const errors = checkEndpointsSemantics(value.clusters, 'clusters');
  return errors.length ? { ok: false, errors } : { ok: true, value, errors: [] };
}

/** One line per error, for logs and CLI output. */
export function formatErrors(errors: readonly TableError[]): string {
  return errors.map((e) => `${e.path || '(root)'}: ${e.message}`).join('\n');
}

function toErrors(errs: ErrorObject[] | null | undefined): TableError[] {
  const out: TableError[] = [];
  const seen = new Set<string>();
  for (const e of errs ?? []) {
    let path = pointerToPath(e.instancePath);
    let message = e.message ?? 'invalid';
    if (e.keyword === 'additionalProperties') {
      path = join(path, String(e.params.additionalProperty));
      message = 'unknown field';
    } else if (e.keyword === 'required') {
      path = join(path, String(e.params.missingProperty));
      message = 'required field missing';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'const') {
      message = `must be ${JSON.stringify(e.params.allowedValue)}`;
    }
    const key = `${path}\0${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path, message });
    }
  }
  return out;
}

function join(path: string, field: string): string {
  return path ? `${path}.${field}` : field;
}

/** `/routeConfigs/0/name` -> `routeConfigs[0].name`. */
function pointerToPath(pointer: string): string {
  if (!pointer) return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
