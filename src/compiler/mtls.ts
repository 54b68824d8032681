/**
 * Client-side TLS of outbound clusters: a DestinationRule's `tls` when it sets one (it wins;
 * DISABLE turns TLS off), else Istio's auto mTLS: ISTIO_MUTUAL to the endpoints labelled
 * `security.istio.io/tlsMode: istio` (per endpoint, `auto: true`), plaintext to the others.
 * The expected server identities are the SPIFFE IDs of the service's service accounts.
 */

import { DEFAULT_TRUST_DOMAIN } from '../api/mesh.js';
import type { ClientTLSSettings } from '../api/networking/destination-rule.js';
import { getOrCreate } from '../registry/hash.js';
import type { MeshService, MeshSnapshot } from '../registry/types.js';
import { type ClusterTls, TLS_MODE_ISTIO, TLS_MODE_LABEL } from '../tables/index.js';
import type { Warn } from './warnings.js';

export interface ClusterTlsInput {
  /** The effective DestinationRule tls for this port/subset (undefined = not set). */
  tls: ClientTLSSettings | undefined;
  snap: MeshSnapshot;
  svc: MeshService;
  port: number;
  subset: string;
  /** `DestinationRule ns/name` for warnings ('' = none applies). */
  where: string;
  warn: Warn;
  trustDomain?: string;
}

interface ServiceIdentity {
  /** Sorted SPIFFE IDs of the service accounts behind the service's endpoints. */
  sans: string[];
  /** Some endpoint of the service runs a sidecar (tlsMode istio). */
  meshed: boolean;
}

const IDENTITIES = new WeakMap<MeshSnapshot, Map<string, ServiceIdentity>>();

/** SPIFFE ID of a Kubernetes service account. */
export function spiffeId(
  namespace: string,
  serviceAccount: string,
  trustDomain = DEFAULT_TRUST_DOMAIN,
): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function identityOf(snap: MeshSnapshot, svc: MeshService, trustDomain: string): ServiceIdentity {
  const cache = getOrCreate(IDENTITIES, snap, () => new Map<string, ServiceIdentity>());
  return getOrCreate(cache, `${trustDomain}|${svc.key}`, () => {
    const sans = new Set<string>();
    let meshed = false;
    for (const ep of snap.endpoints.get(svc.key) ?? []) {
      if (ep.serviceAccount) sans.add(spiffeId(ep.namespace, ep.serviceAccount, trustDomain));
      if (ep.labels[TLS_MODE_LABEL] === TLS_MODE_ISTIO) meshed = true;
    }
    return { sans: [...sans].sort(), meshed };
  });
}

/** Istio's SNI for mesh mTLS: `outbound_.<port>_.<subset>_.<host>`. */
export function istioSni(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/** The cluster's `tls`, or undefined for plaintext. */
export function clusterTls(i: ClusterTlsInput): ClusterTls | undefined {
  const td = i.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const dr = i.tls;
  if (dr?.mode === undefined || dr.mode === 'DISABLE') {
    if (dr?.mode === 'DISABLE') return undefined;
    // Auto mTLS: only worth emitting when some endpoint of the service has a sidecar.
    const id = identityOf(i.snap, i.svc, td);
    if (!id.meshed || i.svc.meshExternal) return undefined;
    return {
      mode: 'ISTIO_MUTUAL',
      auto: true,
      sni: istioSni(i.port, i.subset, i.svc.hostname),
      ...(id.sans.length ? { subjectAltNames: id.sans } : {}),
    };
  }
  if (dr.caCrl) i.warn(i.where, 'tls.caCrl is not supported yet; revocation is not checked');
  if (dr.mode === 'ISTIO_MUTUAL') {
    const sans = dr.subjectAltNames?.length ? [...dr.subjectAltNames] : identityOf(i.snap, i.svc, td).sans;
    return {
      mode: 'ISTIO_MUTUAL',
      sni: dr.sni || istioSni(i.port, i.subset, i.svc.hostname),
      ...(sans.length ? { subjectAltNames: sans } : {}),
    };
  }
  // SIMPLE / MUTUAL: origination with the DestinationRule's own trust and credentials.
  const out: ClusterTls = { mode: dr.mode };
  if (dr.sni) out.sni = dr.sni;
  if (dr.subjectAltNames?.length) out.subjectAltNames = [...dr.subjectAltNames];
  if (dr.credentialName) {
    out.credentialName = dr.credentialName;
    i.warn(
      i.where,
      `tls.credentialName "${dr.credentialName}" cannot be resolved by the sidecar yet; ` +
        'connections of this cluster fail until file paths are used',
    );
  } else {
    if (dr.caCertificates) out.caCertificates = dr.caCertificates;
    if (dr.mode === 'MUTUAL' && dr.clientCertificate && dr.privateKey) {
      out.clientCertificate = dr.clientCertificate;
      out.privateKey = dr.privateKey;
    } else if (dr.mode === 'MUTUAL') {
      i.warn(
        i.where,
        'tls.mode MUTUAL needs clientCertificate and privateKey (or credentialName); originating SIMPLE TLS',
      );
      out.mode = 'SIMPLE';
    }
  }
  if (dr.insecureSkipVerify) out.insecureSkipVerify = true;
  return out;
}
