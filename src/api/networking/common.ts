/** Types shared by several networking.istio.io kinds. */
import { Bool, Duration, Enum, Int, List, MapOf, Num, Obj, Str, StrMap, Type, UInt } from '../schema-kit.js';

export const StringMatch = Obj(
  {
    exact: Str('Exact string match.'),
    prefix: Str('Prefix-based match.'),
    regex: Str('RE2 style regex-based match.'),
  },
  'Exactly one of exact, prefix or regex.',
);

export const PortSelector = Obj({ number: UInt('Valid port number.') });

export const Destination = Obj({
  host: Str('The name of a service from the service registry.'),
  subset: Str('The name of a subset within the service.'),
  port: PortSelector,
});

export const Percent = Obj({ value: Num('Percentage in the range of [0.0, 100.0].') });

export const HeaderOperations = Obj({
  set: StrMap('Overwrite the headers specified by key with the given values.'),
  add: StrMap('Append the given values to the headers specified by keys.'),
  remove: List(Str(), 'Remove the specified headers.'),
});

export const Headers = Obj({ request: HeaderOperations, response: HeaderOperations });

export const WorkloadSelector = Obj({
  matchLabels: StrMap('One or more labels that indicate a specific set of pods/VMs.'),
});

export const StringMatchMap = MapOf(StringMatch);

/** TLS settings used by DestinationRule (ClientTLSSettings) and reused by other kinds. */
export const TlsMode = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

export const Int32 = Int;
export { Type };

/** A port of a Gateway server, ServiceEntry or Sidecar listener (Istio's Port/ServicePort/SidecarPort). */
export const Port = Obj({
  number: UInt('A valid non-negative integer port number.'),
  protocol: Str(
    'The protocol exposed on the port: HTTP|HTTPS|GRPC|GRPC-WEB|HTTP2|MONGO|TCP|TLS|UDP|REDIS|MYSQL.',
  ),
  name: Str('Label assigned to the port.'),
  targetPort: UInt('The port number on the endpoint where the traffic will be received.'),
});

/** The v1alpha3 WorkloadSelector of Sidecar and ServiceEntry (`labels`, not `matchLabels`). */
export const LabelsSelector = Obj({
  labels: StrMap(
    'One or more labels that indicate a specific set of pods/VMs on which the configuration should be applied.',
  ),
});

/** Connection pool settings of a DestinationRule (per upstream host) or a Sidecar's inbound listeners. */
export const ConnectionPoolSettings = Obj({
  tcp: Obj({
    maxConnections: Int('Maximum number of HTTP1/TCP connections to a destination host.'),
    connectTimeout: Duration('TCP connection timeout; at least 1ms.'),
    tcpKeepalive: Obj({
      probes: UInt('Maximum number of keepalive probes to send without response.'),
      time: Duration('Idle time before keep-alive probes start being sent.'),
      interval: Duration('Time between keep-alive probes.'),
    }),
    maxConnectionDuration: Duration('The maximum duration of a connection.'),
    idleTimeout: Duration('The idle timeout for TCP connections.'),
  }),
  http: Obj({
    http1MaxPendingRequests: Int('Maximum number of requests queued while waiting for a connection.'),
    http2MaxRequests: Int('Maximum number of active requests to a destination.'),
    maxRequestsPerConnection: Int('Maximum number of requests per connection to a backend.'),
    maxRetries: Int('Maximum number of outstanding retries to all hosts of the cluster.'),
    idleTimeout: Duration('The idle timeout for upstream connection pool connections.'),
    h2UpgradePolicy: Enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']),
    useClientProtocol: Bool('Preserve the client protocol when connecting to the backend.'),
    maxConcurrentStreams: Int('Maximum number of concurrent streams on one HTTP/2 connection.'),
  }),
});

export const ServerTlsModes = [
  'PASSTHROUGH',
  'SIMPLE',
  'MUTUAL',
  'AUTO_PASSTHROUGH',
  'ISTIO_MUTUAL',
  'OPTIONAL_MUTUAL',
] as const;
const TlsProtocol = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];

/** TLS settings of a Gateway server or a Sidecar ingress listener (ServerTLSSettings). */
export const ServerTLSSettings = Obj({
  httpsRedirect: Bool('Send a 301 redirect for all http connections, asking clients to use HTTPS.'),
  mode: Enum([...ServerTlsModes], 'How TLS is enforced (PASSTHROUGH when unset).'),
  serverCertificate: Str('Path to the file holding the server-side TLS certificate.'),
  privateKey: Str("Path to the file holding the server's private key."),
  caCertificates: Str('Path to the CA certificates used to verify client certificates.'),
  caCrl: Str('Path to the certificate revocation list.'),
  credentialName: Str('Name of the secret that holds the TLS certificate, key and CA certificates.'),
  credentialNames: List(Str(), 'Secrets holding several certificates (e.g. RSA and ECDSA) for the server.'),
  tlsCertificates: List(
    Obj({ serverCertificate: Str(), privateKey: Str(), caCertificates: Str() }),
    'Several certificate/key pairs given as file paths.',
  ),
  subjectAltNames: List(Str(), 'Alternate names to verify the subject identity in the client certificate.'),
  verifyCertificateSpki: List(
    Str(),
    'Base64-encoded SHA-256 hashes of the SPKIs of authorized client certificates.',
  ),
  verifyCertificateHash: List(Str(), 'Hex-encoded SHA-256 hashes of authorized client certificates.'),
  minProtocolVersion: Enum(TlsProtocol, 'Minimum TLS protocol version.'),
  maxProtocolVersion: Enum(TlsProtocol, 'Maximum TLS protocol version.'),
  cipherSuites: List(Str(), 'The cipher suites to support.'),
});
