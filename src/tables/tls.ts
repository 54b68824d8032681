/**
 * TLS in the compiled-config contract: how a cluster originates TLS to its endpoints (Istio's
 * DestinationRule ClientTLSSettings plus auto mTLS) and which mTLS mode the inbound side
 * accepts per port (PeerAuthentication, already resolved by the compiler). All optional: a
 * config without them is plaintext both ways, as before.
 *
 * Auto mTLS (Istio's transport socket match on endpoint metadata): a cluster with
 * `{mode: 'ISTIO_MUTUAL', auto: true}` uses mTLS only to endpoints whose labels carry
 * `security.istio.io/tlsMode: istio`; its other endpoints stay plaintext. Without `auto`, the
 * mode applies to every endpoint (a DestinationRule set it explicitly).
 */
import { Bool, Enum, List, MapOf, NonEmpty, Obj, Opt, type Static, Type } from './kit.js';

/** The endpoint label auto mTLS keys on (set by the injector on meshed pods). */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
/** Its value for endpoints that have a sidecar and accept mesh mTLS. */
export const TLS_MODE_ISTIO = 'istio';

export const CLUSTER_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;
export type ClusterTlsMode = (typeof CLUSTER_TLS_MODES)[number];

export const ClusterTlsSchema = Obj(
  {
    mode: Enum([...CLUSTER_TLS_MODES]),
    auto: Opt(
      Bool(
        `ISTIO_MUTUAL only: per endpoint, mTLS to endpoints labelled ${TLS_MODE_LABEL}=${TLS_MODE_ISTIO}, ` +
          'plaintext to the others (Istio auto mTLS).',
      ),
    ),
    sni: Opt(NonEmpty('Server name sent in the ClientHello.')),
    subjectAltNames: Opt(
      List(
        Type.String({ minLength: 1 }),
        'Accepted identities of the server: SPIFFE URIs for ISTIO_MUTUAL, DNS/URI names for ' +
          'SIMPLE/MUTUAL. Absent or empty: any certificate the trust anchors verify.',
      ),
    ),
    caCertificates: Opt(NonEmpty('SIMPLE/MUTUAL: path of the PEM trust anchors (file).')),
    clientCertificate: Opt(NonEmpty('MUTUAL: path of the PEM client certificate chain (file).')),
    privateKey: Opt(NonEmpty('MUTUAL: path of the PEM client key (file).')),
    caCertificatesPem: Opt(
      NonEmpty('Inline PEM trust anchors (e.g. resolved from a credentialName Secret).'),
    ),
    clientCertificatePem: Opt(NonEmpty('Inline PEM client certificate chain.')),
    privateKeyPem: Opt(NonEmpty('Inline PEM client key.')),
    credentialName: Opt(
      NonEmpty(
        'SIMPLE/MUTUAL: Secret holding the credentials, for the proxy to resolve. This build cannot ' +
          'read Secrets: such a cluster fails its connections (UF) and logs why, never plaintext.',
      ),
    ),
    insecureSkipVerify: Opt(Bool('SIMPLE/MUTUAL: do not verify the server certificate (Istio field).')),
    alpn: Opt(List(Type.String({ minLength: 1 }), 'ALPN offered (SIMPLE/MUTUAL); default none.')),
  },
  'Client-side TLS of a cluster (Istio ClientTLSSettings / auto mTLS).',
);
export type ClusterTls = Static<typeof ClusterTlsSchema>;

export const INBOUND_MTLS_MODES = ['PERMISSIVE', 'STRICT', 'DISABLE'] as const;
export type InboundMtlsMode = (typeof INBOUND_MTLS_MODES)[number];

export const InboundMtlsSchema = Obj(
  {
    mode: Enum([...INBOUND_MTLS_MODES], 'Mode of every inbound port not listed in portLevel.'),
    portLevel: Opt(
      MapOf(
        Enum([...INBOUND_MTLS_MODES]),
        'Workload (target) port number as a string -> mode (PeerAuthentication portLevelMtls).',
      ),
    ),
  },
  'Inbound mTLS (PeerAuthentication resolved for this workload). Absent = PERMISSIVE.',
);
export type InboundMtls = Static<typeof InboundMtlsSchema>;

/** Mode of one inbound port (absent config = PERMISSIVE, Istio's default). */
export function inboundModeFor(m: InboundMtls | undefined, port: number): InboundMtlsMode {
  if (m === undefined) return 'PERMISSIVE';
  return m.portLevel?.[String(port)] ?? m.mode;
}

/** Checks the contract cannot express in the schema (paths relative to the cluster). */
export function checkClusterTls(tls: ClusterTls): Array<{ path: string; message: string }> {
  const out: Array<{ path: string; message: string }> = [];
  if (tls.auto === true && tls.mode !== 'ISTIO_MUTUAL')
    out.push({ path: 'tls.auto', message: 'auto applies to ISTIO_MUTUAL only' });
  if (tls.mode === 'MUTUAL') {
    const secret = tls.credentialName !== undefined;
    if (!secret && tls.clientCertificate === undefined && tls.clientCertificatePem === undefined)
      out.push({ path: 'tls.clientCertificate', message: 'MUTUAL needs a client certificate (file or PEM)' });
    if (!secret && tls.privateKey === undefined && tls.privateKeyPem === undefined)
      out.push({ path: 'tls.privateKey', message: 'MUTUAL needs a private key (file or PEM)' });
  }
  for (const k of ['clientCertificate', 'privateKey'] as const)
    if (tls[k] !== undefined && tls[`${k}Pem`] !== undefined)
      out.push({ path: `tls.${k}Pem`, message: `set either ${k} (file) or ${k}Pem, not both` });
  return out;
}
