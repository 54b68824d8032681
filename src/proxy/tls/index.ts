/** Mesh mTLS in the proxy: workload identity contexts, client-side TLS of clusters, inbound termination. */

export { classifyHello, clientHelloAlpn, HelloKind, isMeshAlpn } from './client-hello.js';
export { type CertificateSource, MeshIdentity, trustDomainPrefix } from './identity.js';
export { type InboundHandlers, InboundTls, InboundTlsStats } from './inbound.js';
export { PeerIdentity, peerOf, peerOfStream, setPeer, spiffeIdsOf } from './peer.js';
export { ALPN, type AlpnUse, PeerIdentityError, UpstreamTls } from './upstream.js';
