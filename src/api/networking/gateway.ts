/** Gateway (networking.istio.io): a load balancer at the edge of the mesh and the ports it exposes. */

import { List, Obj, type Static, Str, StrMap } from '../schema-kit.js';
import { Port, ServerTLSSettings } from './common.js';

const Server = Obj({
  port: Port,
  bind: Str('The IP or the Unix domain socket to which the listener should be bound.'),
  hosts: List(Str(), 'One or more hosts exposed by this gateway, as [namespace/]dnsName.'),
  tls: ServerTLSSettings,
  defaultEndpoint: Str('The loopback IP endpoint or Unix domain socket to forward traffic to by default.'),
  name: Str('An optional name of the server; when set it must be unique across all servers.'),
});

export const GatewaySpec = Obj({
  servers: List(Server, 'A list of server specifications.'),
  selector: StrMap(
    'One or more labels selecting the pods/VMs on which this gateway configuration is applied.',
  ),
});

export type GatewaySpec = Static<typeof GatewaySpec>;
export type GatewayServer = Static<typeof Server>;
