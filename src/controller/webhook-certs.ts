/**
 * The webhooks' serving certificate. Generated on first start, kept in a Secret so restarts
 * (and other replicas) reuse it; only the leaf is reissued when it nears expiry or its names
 * change, so the caBundle registered with the apiserver stays valid.
 */
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { createSelfSignedCa, describeCert, issueLeaf } from '../ca/x509.js';
import { isApiError } from './kube.js';

export interface WebhookCerts {
  caCertPem: string;
  caKeyPem: string;
  certPem: string;
  keyPem: string;
}

const RENEW_BEFORE_MS = 30 * 86_400_000;
const LEAF_VALIDITY_HOURS = 365 * 24;
const CA_VALIDITY_DAYS = 10 * 365;

/** The DNS names the apiserver uses to reach the webhook Service (plus loopback for local runs). */
export function webhookNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
    'localhost',
    '127.0.0.1',
  ];
}

/** What to do with what is stored: keep it, reissue the leaf, or start over. Pure. */
export function planWebhookCerts(
  stored: Partial<WebhookCerts> | undefined,
  names: string[],
  now: Date,
): 'keep' | 'reissue-leaf' | 'create' {
  if (!stored?.caCertPem || !stored.caKeyPem) return 'create';
  try {
    const ca = describeCert(stored.caCertPem);
    if (ca.notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) return 'create';
    if (!stored.certPem || !stored.keyPem) return 'reissue-leaf';
    const leaf = describeCert(stored.certPem);
    if (leaf.notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) return 'reissue-leaf';
    if (names.some((n) => !leaf.names.includes(n))) return 'reissue-leaf';
    return 'keep';
  } catch {
    return 'create';
  }
}

export function buildWebhookCerts(
  stored: Partial<WebhookCerts> | undefined,
  names: string[],
  now = new Date(),
): { certs: WebhookCerts; changed: boolean } {
  const plan = planWebhookCerts(stored, names, now);
  if (plan === 'keep') return { certs: stored as WebhookCerts, changed: false };
  const ca =
    plan === 'create'
      ? createSelfSignedCa({ commonName: 'isthmus-webhook-ca', validityDays: CA_VALIDITY_DAYS, now })
      : { certPem: stored!.caCertPem!, keyPem: stored!.caKeyPem! };
  const leaf = issueLeaf(ca, {
    names,
    commonName: names[2] ?? names[0],
    validityHours: LEAF_VALIDITY_HOURS,
    now,
  });
  return {
    certs: { caCertPem: ca.certPem, caKeyPem: ca.keyPem, certPem: leaf.certPem, keyPem: leaf.keyPem! },
    changed: true,
  };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString() : undefined);

function fromSecret(secret: V1Secret): Partial<WebhookCerts> {
  const d = secret.data ?? {};
  return {
    caCertPem: unb64(d['ca.crt']),
    caKeyPem: unb64(d['ca.key']),
    certPem: unb64(d['tls.crt']),
    keyPem: unb64(d['tls.key']),
  };
}

function toData(c: WebhookCerts): Record<string, string> {
  return {
    'ca.crt': b64(c.caCertPem),
    'ca.key': b64(c.caKeyPem),
    'tls.crt': b64(c.certPem),
    'tls.key': b64(c.keyPem),
  };
}

/**
 * Reads the Secret, creates or renews what is needed, writes it back. Two replicas starting at
 * once race on create: the loser (409) re-reads and uses the winner's certificate.
 */
export async function ensureWebhookCerts(
  core: CoreV1Api,
  namespace: string,
  secretName: string,
  names: string[],
): Promise<WebhookCerts> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let secret: V1Secret | undefined;
    try {
      secret = await core.readNamespacedSecret({ name: secretName, namespace });
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
    const { certs, changed } = buildWebhookCerts(secret ? fromSecret(secret) : undefined, names);
    if (!changed) return certs;
    try {
      if (secret) {
        secret.data = toData(certs);
        await core.replaceNamespacedSecret({ name: secretName, namespace, body: secret });
      } else {
        await core.createNamespacedSecret({
          namespace,
          body: {
            metadata: { name: secretName, labels: { 'app.kubernetes.io/part-of': 'isthmus' } },
            type: 'Opaque',
            data: toData(certs),
          },
        });
      }
      return certs;
    } catch (err) {
      if (!isApiError(err, 409)) throw err;
    }
  }
  throw new Error(
    `could not store webhook certificates in Secret ${namespace}/${secretName}: conflicting writers`,
  );
}
