/**
 * Where the CA's keys live: the operator's plug-in Secret `cacerts` when it exists, else our
 * self-signed root in Secret `istio-ca-secret` (both in the control-plane namespace, with
 * istiod's names and keys so existing tooling and docs apply). The self-signed root is created
 * once; restarts and other replicas reuse it, and two replicas racing to create it agree on
 * the winner's (409 -> re-read). A broken Secret is an error, never silently replaced: a new
 * root would cut every workload off from every other.
 */
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { isApiError } from '../controller/kube.js';
import {
  type CaBundle,
  CaBundleError,
  type CaMaterial,
  createSelfSignedMaterial,
  loadCaBundle,
} from './bundle.js';

export const SELF_SIGNED_SECRET = 'istio-ca-secret';
export const PLUGGED_SECRET = 'cacerts';
/** istiod's Secret type for its self-signed root. */
export const CA_SECRET_TYPE = 'istio.io/ca-root';

const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/**
 * Plug-in material from `cacerts` data (base64 values). Accepts istiod's layout
 * (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) and cert-manager's
 * (tls.crt, tls.key, ca.crt). Pure; throws CaBundleError naming the missing keys.
 */
export function pluggedMaterial(data: Record<string, string>): CaMaterial {
  if (data['ca-cert.pem'] || data['ca-key.pem']) {
    const missing = ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem'].filter((k) => !data[k]);
    if (missing.length) throw new CaBundleError(`Secret ${PLUGGED_SECRET} lacks ${missing.join(', ')}`);
    return {
      signingCertPem: unb64(data['ca-cert.pem']),
      signingKeyPem: unb64(data['ca-key.pem']),
      rootCertPem: unb64(data['root-cert.pem']),
      certChainPem: unb64(data['cert-chain.pem']),
    };
  }
  if (data['tls.crt'] && data['tls.key'] && data['ca.crt']) {
    return {
      signingCertPem: unb64(data['tls.crt']),
      signingKeyPem: unb64(data['tls.key']),
      rootCertPem: unb64(data['ca.crt']),
      certChainPem: unb64(data['tls.crt']),
    };
  }
  throw new CaBundleError(
    `Secret ${PLUGGED_SECRET} has neither ca-cert.pem/ca-key.pem/root-cert.pem/cert-chain.pem nor tls.crt/tls.key/ca.crt`,
  );
}

/** Self-signed material from `istio-ca-secret` data. Pure. */
export function selfSignedMaterial(data: Record<string, string>): CaMaterial {
  const cert = unb64(data['ca-cert.pem']);
  const key = unb64(data['ca-key.pem']);
  if (!cert || !key) throw new CaBundleError(`Secret ${SELF_SIGNED_SECRET} lacks ca-cert.pem or ca-key.pem`);
  return { signingCertPem: cert, signingKeyPem: key, rootCertPem: cert };
}

export function selfSignedSecret(m: CaMaterial): V1Secret {
  return {
    metadata: { name: SELF_SIGNED_SECRET, labels: { 'app.kubernetes.io/part-of': 'isthmus' } },
    type: CA_SECRET_TYPE,
    // istiod's layout: chain, leaf key and root are empty for a self-signed root.
    data: {
      'ca-cert.pem': b64(m.signingCertPem),
      'ca-key.pem': b64(m.signingKeyPem),
      'cert-chain.pem': '',
      'key.pem': '',
      'root-cert.pem': '',
    },
  };
}

async function readSecret(core: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (isApiError(err, 404)) return undefined;
    throw err;
  }
}

export interface LoadCaOptions {
  trustDomain: string;
  now?: Date;
}

/**
 * The CA bundle to sign with: `cacerts` if present, else `istio-ca-secret` (created when
 * missing). Throws CaBundleError for unusable material, API errors as they come.
 */
export async function loadOrCreateCaBundle(
  core: CoreV1Api,
  namespace: string,
  opts: LoadCaOptions,
): Promise<CaBundle> {
  const plugged = await readSecret(core, namespace, PLUGGED_SECRET);
  if (plugged) {
    try {
      return loadCaBundle(pluggedMaterial(plugged.data ?? {}), 'plugged', opts.now);
    } catch (err) {
      throw new CaBundleError(`Secret ${namespace}/${PLUGGED_SECRET}: ${(err as Error).message}`);
    }
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await readSecret(core, namespace, SELF_SIGNED_SECRET);
    if (existing) {
      try {
        return loadCaBundle(selfSignedMaterial(existing.data ?? {}), 'self-signed', opts.now);
      } catch (err) {
        throw new CaBundleError(
          `Secret ${namespace}/${SELF_SIGNED_SECRET} is unusable (${(err as Error).message}); ` +
            'delete it to create a new root (every workload certificate will then be reissued)',
        );
      }
    }
    const material = createSelfSignedMaterial(opts.trustDomain, opts.now);
    try {
      await core.createNamespacedSecret({ namespace, body: selfSignedSecret(material) });
      return loadCaBundle(material, 'self-signed', opts.now);
    } catch (err) {
      // Another replica created it first: loop and use theirs.
      if (!isApiError(err, 409)) throw err;
    }
  }
  throw new Error(`could not create or read Secret ${namespace}/${SELF_SIGNED_SECRET}`);
}
