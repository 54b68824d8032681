/**
 * Reads everything a pod can say about its injection (annotations, `proxy.istio.io/config`) on top of the
 * mesh defaults in the context, validating as it goes. All problems are collected, not just the first, so a
 * refused pod lists every bad annotation at once.
 */
import type { V1Container } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { tracingFromProxyConfig } from '../proxy/telemetry/proxy-config.js';
import {
  ALWAYS_EXCLUDED_INBOUND_PORTS,
  ANNOTATIONS,
  INTERCEPTION_MODES,
  type InterceptionMode,
  LOG_LEVELS,
  NATIVE_SIDECAR_MIN_MINOR,
  PORTS,
  PROXY_CONTAINER_NAME,
} from './constants.js';
import { isRecord } from './template.js';
import type { InjectContext, InjectError, Pod, ResourceSpec } from './types.js';
import {
  type Parsed,
  parseBool,
  parseCidrList,
  parseImage,
  parsePortList,
  parseQuantity,
} from './validate.js';

export interface InjectionSettings {
  proxyImage: string;
  logLevel: string;
  interceptionMode: InterceptionMode;
  rewriteProbes: boolean;
  nativeSidecar: boolean;
  holdApplicationUntilProxyStarts: boolean;
  /** `-b`: `*` or the listed ports (derived from the app's container ports when not annotated). */
  includeInboundPorts: string;
  /** User/mesh exclusions only; the mesh's own ports are added when rendering. */
  excludeInboundPorts: number[];
  includeOutboundIPRanges: string;
  excludeOutboundIPRanges: string;
  excludeOutboundPorts: string;
  proxyResources: ResourceSpec;
  /** ProxyConfig as the proxy receives it (mesh values overlaid with the pod's `proxy.istio.io/config`). */
  proxyConfig: Record<string, unknown>;
  /** `proxyMetadata` from ProxyConfig: extra env vars for the proxy. */
  proxyMetadata: Record<string, string>;
}

export interface SettingsResult {
  settings: InjectionSettings | undefined;
  errors: InjectError[];
  warnings: string[];
}

/** Reads the settings of a pod whose previous injection, if any, has already been stripped. */
export function readSettings(pod: Pod, ctx: InjectContext): SettingsResult {
  const annotations = pod.metadata?.annotations ?? {};
  const errors: InjectError[] = [];
  const warnings: string[] = [];

  // Returns the annotation parsed, or the mesh default parsed (a bad mesh default is reported as such).
  function read<T>(name: string, fallback: string, parser: (v: string) => Parsed<T>): T | undefined {
    const raw = annotations[name];
    const field = raw === undefined ? `mesh default for ${name}` : name;
    const value = raw ?? fallback;
    const r = parser(value);
    if (r.ok) return r.value;
    errors.push({ field, value, message: `invalid ${field}="${value}": ${r.message}` });
    return undefined;
  }

  const proxyImage = read(ANNOTATIONS.proxyImage, ctx.proxyImage, parseImage);
  const logLevel = read(ANNOTATIONS.logLevel, ctx.logLevel, (v) =>
    LOG_LEVELS.includes(v)
      ? { ok: true, value: v }
      : { ok: false, message: `expected one of ${LOG_LEVELS.join(', ')}` },
  );
  const interceptionMode = read(ANNOTATIONS.interceptionMode, ctx.interceptionMode, (v) =>
    (INTERCEPTION_MODES as readonly string[]).includes(v)
      ? { ok: true, value: v as InterceptionMode }
      : { ok: false, message: `expected one of ${INTERCEPTION_MODES.join(', ')}` },
  );
  const rewriteProbes = read(ANNOTATIONS.rewriteAppHTTPProbers, String(ctx.rewriteAppHTTPProbes), parseBool);
  const nativeSidecar = read(ANNOTATIONS.nativeSidecar, String(nativeByDefault(ctx)), parseBool);

  const includeInbound = read(
    ANNOTATIONS.includeInboundPorts,
    defaultIncludeInboundPorts(appContainers(pod)),
    (v) => parsePortList(v, true),
  );
  const excludeInbound = read(ANNOTATIONS.excludeInboundPorts, ctx.excludeInboundPorts, (v) =>
    parsePortList(v, false),
  );
  const includeOutbound = read(ANNOTATIONS.includeOutboundIPRanges, ctx.includeOutboundIPRanges, (v) =>
    parseCidrList(v, true),
  );
  const excludeOutbound = read(ANNOTATIONS.excludeOutboundIPRanges, ctx.excludeOutboundIPRanges, (v) =>
    parseCidrList(v, false),
  );
  const excludeOutboundPorts = read(ANNOTATIONS.excludeOutboundPorts, ctx.excludeOutboundPorts, (v) =>
    parsePortList(v, false),
  );

  const proxyResources = readResources(annotations, ctx, errors);
  const pc = readProxyConfig(annotations, ctx, errors);

  if (errors.length > 0 || !pc) return { settings: undefined, errors, warnings };
  return {
    settings: {
      proxyImage: proxyImage!,
      logLevel: logLevel!,
      interceptionMode: interceptionMode!,
      rewriteProbes: rewriteProbes!,
      nativeSidecar: nativeSidecar!,
      holdApplicationUntilProxyStarts: pc.hold,
      includeInboundPorts: includeInbound === '*' ? '*' : includeInbound!.join(','),
      excludeInboundPorts: excludeInbound as number[],
      includeOutboundIPRanges: includeOutbound!,
      excludeOutboundIPRanges: excludeOutbound!,
      excludeOutboundPorts: (excludeOutboundPorts as number[]).join(','),
      proxyResources,
      proxyConfig: pc.config,
      proxyMetadata: pc.metadata,
    },
    errors,
    warnings,
  };
}

/** App containers: everything but the proxy (injected init containers are gone after stripping). */
export function appContainers(pod: Pod): V1Container[] {
  return (pod.spec?.containers ?? []).filter((c) => c.name !== PROXY_CONTAINER_NAME);
}

/**
 * The declared container ports, as Istio derives `includeInboundPorts`. A pod that declares none gets `*`:
 * capturing nothing would let its inbound traffic bypass the proxy (and mTLS) silently.
 */
export function defaultIncludeInboundPorts(containers: V1Container[]): string {
  const ports: number[] = [];
  for (const c of containers) {
    for (const p of c.ports ?? []) if (!ports.includes(p.containerPort)) ports.push(p.containerPort);
  }
  return ports.length === 0 ? '*' : ports.join(',');
}

/** `-d`: the mesh's own ports first (metrics, health, status), then the pod's, without duplicates. */
export function inboundExclusions(extra: number[]): number[] {
  const out = [...ALWAYS_EXCLUDED_INBOUND_PORTS, PORTS.status];
  for (const p of extra) if (!out.includes(p)) out.push(p);
  return out;
}

/** Native sidecars need Kubernetes >= 1.29 (beta, on by default); unknown versions get regular containers. */
export function nativeByDefault(ctx: InjectContext): boolean {
  if (ctx.nativeSidecars !== undefined) return ctx.nativeSidecars;
  const m = /^v?(\d+)\.(\d+)/.exec(ctx.clusterVersion ?? '');
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 1 || (major === 1 && minor >= NATIVE_SIDECAR_MIN_MINOR);
}

const RESOURCE_ANNOTATIONS = [
  { name: ANNOTATIONS.proxyCPU, section: 'requests', resource: 'cpu' },
  { name: ANNOTATIONS.proxyMemory, section: 'requests', resource: 'memory' },
  { name: ANNOTATIONS.proxyCPULimit, section: 'limits', resource: 'cpu' },
  { name: ANNOTATIONS.proxyMemoryLimit, section: 'limits', resource: 'memory' },
] as const;

/**
 * Istio's rule: when any of the four resource annotations is set, the proxy gets exactly the annotated
 * values and no defaults (so a large request never collides with a smaller default limit); otherwise the
 * mesh defaults apply.
 */
function readResources(
  annotations: Record<string, string>,
  ctx: InjectContext,
  errors: InjectError[],
): ResourceSpec {
  const set = RESOURCE_ANNOTATIONS.filter((a) => annotations[a.name] !== undefined);
  if (set.length === 0) return structuredClone(ctx.proxyResources);
  const out: { requests?: Record<string, string>; limits?: Record<string, string> } = {};
  const numeric: Record<string, number> = {};
  for (const a of set) {
    const value = annotations[a.name]!;
    const q = parseQuantity(value);
    if (!q.ok) {
      errors.push({ field: a.name, value, message: `invalid ${a.name}="${value}": ${q.message}` });
      continue;
    }
    numeric[`${a.section}.${a.resource}`] = q.value;
    out[a.section] = { ...out[a.section], [a.resource]: value.trim() };
  }
  for (const resource of ['cpu', 'memory']) {
    const req = numeric[`requests.${resource}`];
    const lim = numeric[`limits.${resource}`];
    if (req !== undefined && lim !== undefined && req > lim) {
      const reqName = resource === 'cpu' ? ANNOTATIONS.proxyCPU : ANNOTATIONS.proxyMemory;
      const limName = resource === 'cpu' ? ANNOTATIONS.proxyCPULimit : ANNOTATIONS.proxyMemoryLimit;
      errors.push({
        field: reqName,
        value: annotations[reqName]!,
        message: `invalid ${reqName}="${annotations[reqName]}": request exceeds ${limName}="${annotations[limName]}"`,
      });
    }
  }
  return out;
}

interface ProxyConfigResult {
  config: Record<string, unknown>;
  hold: boolean;
  metadata: Record<string, string>;
}

/** `proxy.istio.io/config`: a ProxyConfig fragment in JSON or YAML, overlaid on the mesh's values. */
function readProxyConfig(
  annotations: Record<string, string>,
  ctx: InjectContext,
  errors: InjectError[],
): ProxyConfigResult | undefined {
  const base: Record<string, unknown> = { discoveryAddress: ctx.discoveryAddress };
  if (ctx.holdApplicationUntilProxyStarts) base.holdApplicationUntilProxyStarts = true;
  const raw = annotations[ANNOTATIONS.proxyConfig];
  if (raw === undefined) return { config: base, hold: ctx.holdApplicationUntilProxyStarts, metadata: {} };

  const field = ANNOTATIONS.proxyConfig;
  const bad = (message: string): undefined => {
    errors.push({ field, value: raw, message: `invalid ${field}="${raw}": ${message}` });
    return undefined;
  };
  let parsed: unknown;
  try {
    parsed = parseYaml(raw);
  } catch (err) {
    return bad(`not JSON or YAML (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  if (parsed === null || parsed === undefined) parsed = {};
  if (!isRecord(parsed)) return bad('expected a mapping of ProxyConfig fields');

  try {
    // The proxy validates the same at startup (PROXY_CONFIG); refusing here names the pod's field.
    tracingFromProxyConfig(parsed);
  } catch (err) {
    return bad(err instanceof Error ? err.message : String(err));
  }
  const hold = parsed.holdApplicationUntilProxyStarts;
  if (hold !== undefined && typeof hold !== 'boolean')
    return bad('holdApplicationUntilProxyStarts must be a boolean');
  const metadata: Record<string, string> = {};
  if (parsed.proxyMetadata !== undefined) {
    if (!isRecord(parsed.proxyMetadata)) return bad('proxyMetadata must be a mapping of strings');
    for (const [k, v] of Object.entries(parsed.proxyMetadata)) {
      if (typeof v !== 'string') return bad(`proxyMetadata.${k} must be a string`);
      if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(k))
        return bad(`proxyMetadata key "${k}" is not a valid env var name`);
      metadata[k] = v;
    }
  }
  return {
    config: { ...base, ...parsed },
    hold: hold ?? ctx.holdApplicationUntilProxyStarts,
    metadata,
  };
}
