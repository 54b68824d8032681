/** TCP proxying, TLS passthrough, protocol sniffing and original-destination passthrough. */
export { INBOUND_PASSTHROUGH_V4, INBOUND_PASSTHROUGH_V6, PASSTHROUGH, TcpMetrics } from './metrics.js';
export { parseSni } from './sni.js';
export { classifyProtocol, peek, Sniffed, sniff } from './sniff.js';
export {
  acceptAsHttp,
  type HttpAcceptor,
  INBOUND_PASSTHROUGH_BIND_V4,
  INBOUND_PASSTHROUGH_BIND_V6,
  type TcpOptions,
  TcpProxy,
} from './tcp-proxy.js';
