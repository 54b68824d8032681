/**
 * The sidecar template is data (webhooks/sidecar-template.yaml) so operators can read and change what is
 * injected. Rendering is a tiny, safe substitution over the already-parsed YAML tree: nothing is evaluated
 * and pod-controlled values can never add YAML structure, because substitution happens after parsing.
 *
 * Rules (also documented at the top of the template file):
 * - `${name}` or `${a.b}` as a whole string becomes the typed value (number, list, mapping, ...).
 * - `${name}` inside a longer string is interpolated; the value must be a scalar.
 * - `${name|string}` forces a string (Kubernetes wants strings in `args` and env `value`), `${name|json}`
 *   encodes the value as JSON text.
 * - A mapping entry whose value renders to `null` is dropped; so is a list item. A whole-string list item
 *   that renders to a list is spliced into the surrounding list. This is the only "conditional".
 * - An unknown name is an error (catches typos in an edited template); `$${` is a literal `${`.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export interface SidecarTemplate {
  /** Where the template came from, for error messages. */
  source: string;
  /** Parsed YAML: a mapping with `initContainers`, `containers` and `volumes`. */
  root: Record<string, unknown>;
}

/** A template that cannot be parsed or rendered; the message says where. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

const PLACEHOLDER = /\$(\$?)\{\s*([^}|\s]+)\s*(?:\|\s*([^}\s]*)\s*)?\}/g;
const WHOLE = /^\$\{\s*([^}|\s]+)\s*(?:\|\s*([^}\s]*)\s*)?\}$/;
const FILTERS = new Set(['string', 'json']);

/** Path of the bundled template: two levels up from src/inject or dist/inject. */
export const BUNDLED_TEMPLATE_PATH = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'webhooks',
  'sidecar-template.yaml',
);

export function parseSidecarTemplate(text: string, source: string): SidecarTemplate {
  let root: unknown;
  try {
    root = parse(text);
  } catch (err) {
    throw new TemplateError(
      `sidecar template ${source}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  // The bundled file is a ConfigMap (so `kubectl apply -f webhooks/` accepts it); the template
  // itself is its data.template.
  if (isRecord(root) && root.kind === 'ConfigMap') {
    const data = root.data;
    const inner = isRecord(data) ? data.template : undefined;
    if (typeof inner !== 'string')
      throw new TemplateError(`sidecar template ${source}: ConfigMap has no data.template`);
    return parseSidecarTemplate(inner, `${source} (data.template)`);
  }
  if (!isRecord(root)) throw new TemplateError(`sidecar template ${source}: top level must be a mapping`);
  for (const key of ['initContainers', 'containers', 'volumes']) {
    if (root[key] !== undefined && !Array.isArray(root[key])) {
      throw new TemplateError(`sidecar template ${source}: ${key} must be a list`);
    }
  }
  return { source, root };
}

let bundled: SidecarTemplate | undefined;

/** Reads a template file; the bundled one is read once and cached (compile once, render per pod). */
export function loadSidecarTemplate(path: string = BUNDLED_TEMPLATE_PATH): SidecarTemplate {
  if (path === BUNDLED_TEMPLATE_PATH && bundled) return bundled;
  const tpl = parseSidecarTemplate(readFileSync(path, 'utf8'), path);
  if (path === BUNDLED_TEMPLATE_PATH) bundled = tpl;
  return tpl;
}

/** Renders the template with `values`; throws TemplateError naming the placeholder and its location. */
export function renderTemplate(
  tpl: SidecarTemplate,
  values: Record<string, unknown>,
): Record<string, unknown> {
  const out = renderNode(tpl.root, values, '', tpl.source);
  if (!isRecord(out)) throw new TemplateError(`sidecar template ${tpl.source}: top level must be a mapping`);
  return out;
}

function renderNode(node: unknown, values: Record<string, unknown>, at: string, source: string): unknown {
  if (typeof node === 'string') return renderString(node, values, at, source);
  if (Array.isArray(node)) {
    const out: unknown[] = [];
    node.forEach((item, i) => {
      const v = renderNode(item, values, `${at}[${i}]`, source);
      if (v === null) return;
      // Splice only lists produced by a whole-string placeholder, never literal nested lists.
      if (Array.isArray(v) && typeof item === 'string') out.push(...v);
      else out.push(v);
    });
    return out;
  }
  if (isRecord(node)) {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(node)) {
      const v = renderNode(item, values, at ? `${at}.${k}` : k, source);
      if (v !== null) out[k] = v;
    }
    return out;
  }
  return node;
}

function renderString(s: string, values: Record<string, unknown>, at: string, source: string): unknown {
  if (!s.includes('${')) return s;
  const whole = WHOLE.exec(s);
  if (whole) return applyFilter(lookup(values, whole[1]!, at, source), whole[2], whole[1]!, at, source);
  return s.replace(PLACEHOLDER, (_m, escaped: string, name: string, filter: string | undefined) => {
    if (escaped) return `\${${name}${filter ? `|${filter}` : ''}}`;
    const v = applyFilter(lookup(values, name, at, source), filter, name, at, source);
    if (v === null || typeof v === 'object') {
      throw new TemplateError(
        `sidecar template ${source} at ${at}: \${${name}} is not a scalar and cannot be part of a string`,
      );
    }
    return String(v);
  });
}

function applyFilter(
  v: unknown,
  filter: string | undefined,
  name: string,
  at: string,
  source: string,
): unknown {
  if (filter === undefined) return v;
  if (!FILTERS.has(filter)) {
    throw new TemplateError(`sidecar template ${source} at ${at}: unknown filter "${filter}" on \${${name}}`);
  }
  if (v === null) return null;
  return filter === 'json' ? JSON.stringify(v) : String(v);
}

function lookup(values: Record<string, unknown>, name: string, at: string, source: string): unknown {
  let cur: unknown = values;
  for (const part of name.split('.')) {
    // Own properties only: a template must not reach prototypes (`${constructor}`).
    if (!isRecord(cur) || !Object.hasOwn(cur, part)) {
      throw new TemplateError(`sidecar template ${source} at ${at}: unknown value \${${name}}`);
    }
    cur = cur[part];
  }
  if (cur === undefined)
    throw new TemplateError(`sidecar template ${source} at ${at}: value \${${name}} is not set`);
  return cur;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
