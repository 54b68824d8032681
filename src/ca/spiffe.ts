/** SPIFFE identities of Kubernetes service accounts: `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`. */

export interface ServiceAccountRef {
  namespace: string;
  serviceAccount: string;
}

const SA_PREFIX = 'system:serviceaccount:';
// Namespaces are DNS labels; service account names DNS subdomains. Anything else (':' or '/'
// in particular) could smuggle extra path segments into the SPIFFE ID.
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SA_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/**
 * `system:serviceaccount:<ns>:<sa>` (the username a TokenReview reports) to its parts;
 * undefined for any other user or a malformed name.
 */
export function serviceAccountFromUsername(username: string): ServiceAccountRef | undefined {
  if (!username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2) return undefined;
  const [namespace, serviceAccount] = parts as [string, string];
  if (!NAMESPACE.test(namespace) || !SA_NAME.test(serviceAccount)) return undefined;
  return { namespace, serviceAccount };
}

export function spiffeIdFor(trustDomain: string, sa: ServiceAccountRef): string {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new Error(`invalid trust domain "${trustDomain}"`);
  return `spiffe://${trustDomain}/ns/${sa.namespace}/sa/${sa.serviceAccount}`;
}

/** The parts of a Kubernetes SPIFFE ID, or undefined when it is not one. */
export function parseSpiffeId(id: string): (ServiceAccountRef & { trustDomain: string }) | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  if (!m || !TRUST_DOMAIN.test(m[1]!) || !NAMESPACE.test(m[2]!) || !SA_NAME.test(m[3]!)) return undefined;
  return { trustDomain: m[1]!, namespace: m[2]!, serviceAccount: m[3]! };
}
