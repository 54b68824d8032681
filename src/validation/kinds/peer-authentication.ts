/** Semantic rules for PeerAuthentication beyond its schema (Galley's checks, with field paths). */
import { at, type Findings } from '../findings.js';
import { checkPolicyScope, entries, isObject } from './common.js';
import type { ValidationContext } from './index.js';

/**
 * - `portLevelMtls` only with a selector that has labels (mesh- and namespace-wide policies
 *   cannot have it), with at least one entry, keyed by port numbers 1..65535;
 * - the selector's labels (no empty keys, no wildcards; no labels at all is a warning).
 * The mode values themselves are an enum of the schema.
 */
export function validatePeerAuthentication(
  spec: Record<string, unknown>,
  f: Findings,
  ctx: ValidationContext,
): void {
  checkPolicyScope(f, spec, ctx.namespace);

  if (spec.portLevelMtls === undefined || spec.portLevelMtls === null) return;
  const ports = entries(spec.portLevelMtls);
  const hasLabels = isObject(spec.selector) && entries(spec.selector.matchLabels).length > 0;
  if (!hasLabels) {
    const scope = ctx.namespace === ctx.rootNamespace ? 'a mesh-wide' : 'a namespace-wide';
    f.error(
      'spec.portLevelMtls',
      `portLevelMtls requires a selector with matchLabels; ${scope} PeerAuthentication cannot have port-level mTLS`,
    );
  }
  if (isObject(spec.portLevelMtls) && ports.length === 0)
    f.error('spec.portLevelMtls', 'portLevelMtls, if set, must have at least one port');
  for (const [key] of ports) {
    const n = Number(key);
    if (!/^\d+$/.test(key) || n < 1 || n > 65535)
      f.error(
        at('spec.portLevelMtls', key),
        `port ${JSON.stringify(key)} must be a port number in the range 1..65535`,
      );
  }
}
