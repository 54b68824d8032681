/**
 * Listeners: where the proxy accepts traffic and which route config serves it. Today only
 * HTTP/1.1 listeners are served; the protocol field is in the contract so the control plane
 * can emit HTTP/2, gRPC, TCP and TLS listeners now and the proxy picks them up as they land.
 */
import { Bool, Enum, List, NonEmpty, Obj, Opt, PortNum, type Static, Str } from './kit.js';
import { L4RouteSchema } from './l4-routes.js';

export const LISTENER_PROTOCOLS = ['http', 'http2', 'grpc', 'tcp', 'tls', 'auto'] as const;

export const ListenerSchema = Obj(
  {
    name: NonEmpty('E.g. virtualOutbound, virtualInbound, 0.0.0.0_9080.'),
    direction: Enum(['outbound', 'inbound']),
    port: PortNum('Logical port (15001, 15006, 9080); the bind port may be overridden by options.'),
    address: Opt(Str('Bind address; default 0.0.0.0.')),
    protocol: Enum([...LISTENER_PROTOCOLS], 'From Istio port naming / appProtocol; auto = sniff.'),
    routeConfig: Opt(NonEmpty('Route config serving every request of this listener.')),
    routeByPort: Opt(
      Bool(
        'Pick the route config whose `port` equals the destination port (original dst, else the ' +
          'Host/absolute-URI port). For the 15001 catch-all listener.',
      ),
    ),
    explicitProxy: Opt(Bool('Accept absolute-form request targets (HTTP forward proxy).')),
    cluster: Opt(
      NonEmpty('For tcp/tls listeners: the cluster to forward to (when `l4Routes` match nothing).'),
    ),
    l4Routes: Opt(
      List(
        L4RouteSchema,
        'For tcp/tls listeners: VirtualService tcp/tls routes by destination subnet and SNI; the ' +
          'most specific match wins (see l4-routes.ts).',
      ),
    ),
  },
  'HTTP listeners set routeConfig or routeByPort.',
);
export type Listener = Static<typeof ListenerSchema>;
