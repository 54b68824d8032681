/**
 * The telemetry part of Istio's ProxyConfig as the proxy receives it: env `PROXY_CONFIG` (the
 * injector's merge of mesh defaults and the pod's `proxy.istio.io/config`, JSON), plus the
 * per-pod access log settings: env `ISTHMUS_ACCESS_LOG_FILE` / `_ENCODING` / `_FORMAT` (settable
 * through ProxyConfig `proxyMetadata`, which the injector turns into env). They win over the
 * mesh-wide ones (mesh config `accessLogFile`, `accessLogEncoding`, `accessLogFormat`), which
 * reach the proxy in its tables (`telemetry.accessLog`).
 *
 * Errors name the field: `PROXY_CONFIG: tracing.sampling: expected a number from 0 to 100, got "x"`.
 */
import { fromProxyConfigEnv, PROXY_CONFIG_ENV } from '../../api/proxy-config.js';
import type { AccessLogEncoding, AccessLogOptions } from './access-log.js';
import { compileFormat } from './access-log.js';
import type { TracingConfig } from './request-telemetry.js';
import { collectorUrl } from './zipkin.js';

/** Tracers of ProxyConfig.tracing that isthmus does not implement. */
const OTHER_TRACERS = ['lightstep', 'datadog', 'stackdriver', 'openCensusAgent', 'opencensusagent'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * `tracing` of a ProxyConfig object; undefined when absent. Throws `<field>: <problem>` (the
 * caller prefixes where it came from). `sampling` defaults to 1 (Istio's default percentage).
 */
export function tracingFromProxyConfig(pc: unknown): TracingConfig | undefined {
  if (pc === undefined || pc === null) return undefined;
  if (!isRecord(pc)) throw new Error('expected a mapping of ProxyConfig fields');
  const t = pc.tracing;
  if (t === undefined || t === null) return undefined;
  if (!isRecord(t)) throw new Error('tracing: expected a mapping (zipkin, sampling)');
  for (const other of OTHER_TRACERS)
    if (t[other] !== undefined)
      throw new Error(`tracing.${other}: not supported, isthmus exports to zipkin only`);
  let sampling = 1;
  if (t.sampling !== undefined) {
    const s = t.sampling;
    const n = typeof s === 'string' && s.trim() !== '' ? Number(s) : s;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 100)
      throw new Error(`tracing.sampling: expected a number from 0 to 100, got ${JSON.stringify(s)}`);
    sampling = n;
  }
  const out: TracingConfig = { sampling };
  if (t.zipkin !== undefined && t.zipkin !== null) {
    if (!isRecord(t.zipkin)) throw new Error('tracing.zipkin: expected a mapping with address');
    const address = t.zipkin.address;
    if (typeof address !== 'string' || address === '')
      throw new Error('tracing.zipkin.address: expected host:port, e.g. zipkin.istio-system:9411');
    try {
      collectorUrl(address);
    } catch (err) {
      throw new Error(`tracing.zipkin.address: ${(err as Error).message}`);
    }
    out.zipkin = { address };
  }
  return out;
}

/** Parses env `PROXY_CONFIG` (JSON or YAML); errors start with `PROXY_CONFIG:`. */
export function tracingFromEnv(
  value: string | undefined,
  name = PROXY_CONFIG_ENV,
): TracingConfig | undefined {
  return fromProxyConfigEnv(value, tracingFromProxyConfig, name);
}

/** `--trace-sampling` / flag values: a percentage 0..100. */
export function parseSampling(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100)
    throw new Error(`${flag}: expected a percentage from 0 to 100, got "${value}"`);
  return n;
}

/** Access log settings from flags or env (flags win); undefined = off. Validates the format. */
export function accessLogOptions(
  file: string | undefined,
  encoding: string | undefined,
  format: string | undefined,
  names = { file: '--access-log-file', encoding: '--access-log-encoding', format: '--access-log-format' },
): AccessLogOptions | undefined {
  if (file === undefined || file === '') {
    if (encoding || format) throw new Error(`${names.encoding}/${names.format} need ${names.file}`);
    return undefined;
  }
  const enc = (encoding ?? 'TEXT').toUpperCase();
  if (enc !== 'TEXT' && enc !== 'JSON')
    throw new Error(`${names.encoding}: expected TEXT or JSON, got "${encoding}"`);
  const opts: AccessLogOptions = { file, encoding: enc as AccessLogEncoding };
  if (format !== undefined && format !== '') {
    try {
      compileFormat(opts.encoding!, format);
    } catch (err) {
      throw new Error(`${names.format}: ${(err as Error).message}`);
    }
    opts.format = format;
  }
  return opts;
}

/** Envoy's node id for a sidecar: `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>`. */
export function sidecarNodeId(env: Record<string, string | undefined>): string {
  const ns = env.POD_NAMESPACE ?? 'default';
  const domain = env.ISTIO_META_DNS_DOMAIN ?? `${ns}.svc.cluster.local`;
  return `sidecar~${env.INSTANCE_IP ?? '127.0.0.1'}~${env.POD_NAME ?? 'unknown'}.${ns}~${domain}`;
}
