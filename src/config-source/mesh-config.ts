/**
 * Istio's mesh config as the cluster holds it: ConfigMap `istio` in the root namespace, key
 * `mesh`, a YAML MeshConfig (what `meshConfig:` of an IstioOperator / Helm values becomes).
 * Isthmus reads the fields it implements, and ignores the others as Istio ignores fields it
 * does not know:
 *  - `outboundTrafficPolicy.mode`: ALLOW_ANY (default) | REGISTRY_ONLY;
 *  - `accessLogFile` (empty = off, the default), `accessLogEncoding` (TEXT | JSON, default
 *    TEXT), `accessLogFormat` (Envoy format string, or a JSON object for JSON; empty = Istio's
 *    default format).
 * `rootNamespace` is not taken from it: the root namespace is where the ConfigMap is read.
 *
 * Never throws: a malformed document gives errors that name the field
 * (`accessLogEncoding: expected TEXT or JSON, got "XML"`); the caller keeps its last good settings.
 */
import { parse as parseYaml } from 'yaml';
import { compileFormat } from '../proxy/telemetry/access-log.js';
import type { MeshAccessLog, MeshSettings } from '../registry/types.js';

/** Name of the mesh config ConfigMap (Istio `istio`, revisioned `istio-<rev>` not supported). */
export const MESH_CONFIGMAP = 'istio';
/** Its key holding the MeshConfig YAML. */
export const MESH_CONFIGMAP_KEY = 'mesh';

/** The MeshSettings fields a mesh config document sets (rootNamespace never). */
export type MeshConfigSettings = Pick<MeshSettings, 'outboundTrafficPolicy' | 'accessLog'>;

export type MeshConfigResult = { ok: true; settings: MeshConfigSettings } | { ok: false; errors: string[] };

const MODES = ['ALLOW_ANY', 'REGISTRY_ONLY'] as const;
const ENCODINGS = ['TEXT', 'JSON'] as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parses the `mesh` YAML of the ConfigMap; blank or absent = Istio's defaults. */
export function parseMeshConfig(text: string | undefined): MeshConfigResult {
  const settings: MeshConfigSettings = { outboundTrafficPolicy: 'ALLOW_ANY' };
  if (text === undefined || text.trim() === '') return { ok: true, settings };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [`not YAML (${(err as Error).message.split('\n')[0]})`] };
  }
  if (doc === null || doc === undefined) return { ok: true, settings };
  if (!isRecord(doc)) return { ok: false, errors: ['expected a mapping of MeshConfig fields'] };
  const errors: string[] = [];

  const otp = doc.outboundTrafficPolicy;
  if (otp !== undefined && otp !== null) {
    if (!isRecord(otp)) errors.push('outboundTrafficPolicy: expected a mapping with mode');
    else if (otp.mode !== undefined && otp.mode !== null) {
      const mode = otp.mode;
      if (typeof mode === 'string' && (MODES as readonly string[]).includes(mode))
        settings.outboundTrafficPolicy = mode as MeshSettings['outboundTrafficPolicy'];
      else
        errors.push(
          `outboundTrafficPolicy.mode: expected ALLOW_ANY or REGISTRY_ONLY, got ${JSON.stringify(mode)}`,
        );
    }
  }

  const file = doc.accessLogFile;
  const encoding = doc.accessLogEncoding;
  const format = doc.accessLogFormat;
  if (file !== undefined && file !== null && typeof file !== 'string')
    errors.push(`accessLogFile: expected a path such as /dev/stdout, got ${JSON.stringify(file)}`);
  let enc: MeshAccessLog['encoding'];
  if (encoding !== undefined && encoding !== null) {
    if (typeof encoding === 'string' && (ENCODINGS as readonly string[]).includes(encoding))
      enc = encoding as MeshAccessLog['encoding'];
    else errors.push(`accessLogEncoding: expected TEXT or JSON, got ${JSON.stringify(encoding)}`);
  }
  if (format !== undefined && format !== null && typeof format !== 'string')
    errors.push(`accessLogFormat: expected a string, got ${JSON.stringify(format)}`);
  if (errors.length) return { ok: false, errors };

  if (typeof file === 'string' && file !== '') {
    const log: MeshAccessLog = { file, encoding: enc ?? 'TEXT' };
    if (typeof format === 'string' && format !== '') {
      try {
        compileFormat(log.encoding!, format);
      } catch (err) {
        return { ok: false, errors: [`accessLogFormat: ${(err as Error).message}`] };
      }
      log.format = format;
    }
    settings.accessLog = log;
  }
  return { ok: true, settings };
}
