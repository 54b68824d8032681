/**
 * Istio's ProxyConfig as the sidecar receives it: the injector merges mesh `defaultConfig` with
 * the pod's `proxy.istio.io/config` annotation into env `PROXY_CONFIG` (JSON; YAML accepted).
 * Each consumer (tracing, gatewayTopology, ...) reads its own fields through `fromProxyConfigEnv`,
 * so every error names the variable and the field.
 */
import { parse as parseYaml } from 'yaml';

export const PROXY_CONFIG_ENV = 'PROXY_CONFIG';

/**
 * Parses `value` (env PROXY_CONFIG) and hands it to `read`; undefined when unset or blank.
 * Errors, from parsing or from `read`, start with `name:`.
 */
export function fromProxyConfigEnv<T>(
  value: string | undefined,
  read: (proxyConfig: unknown) => T,
  name: string = PROXY_CONFIG_ENV,
): T | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = parseYaml(value);
  } catch (err) {
    throw new Error(`${name}: not JSON or YAML (${(err as Error).message.split('\n')[0]})`);
  }
  try {
    return read(parsed);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
}
