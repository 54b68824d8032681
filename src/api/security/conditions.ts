/** The attribute keys AuthorizationPolicy `when` conditions may use (Istio's list): one source for
 * the validating webhook and the compiled-table validator. */
export const PLAIN_CONDITION_KEYS: ReadonlySet<string> = new Set([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

/** Keys with a bracketed argument: headers, JWT claims (nested), Envoy filter metadata. */
export const HEADER_CONDITION_KEY = /^request\.headers\[[^[\]]+\]$/;
export const CLAIM_CONDITION_KEY = /^request\.auth\.claims(\[[^[\]]+\])+$/;
export const ENVOY_FILTER_CONDITION_KEY = /^experimental\.envoy\.filters\.[^[\]]+(\[[^[\]]+\])+$/;

export function isKnownConditionKey(key: string): boolean {
  return (
    PLAIN_CONDITION_KEYS.has(key) ||
    HEADER_CONDITION_KEY.test(key) ||
    CLAIM_CONDITION_KEY.test(key) ||
    ENVOY_FILTER_CONDITION_KEY.test(key)
  );
}
