/** Sidecar (networking.istio.io): the ports, protocols and reachable hosts of a workload's proxy. */

import { Enum, List, Obj, type Static, Str } from '../schema-kit.js';
import { ConnectionPoolSettings, Destination, LabelsSelector, Port, ServerTLSSettings } from './common.js';

const CaptureMode = Enum(
  ['DEFAULT', 'IPTABLES', 'NONE'],
  'How traffic to the listener is expected to be captured.',
);

const IstioIngressListener = Obj({
  port: Port,
  bind: Str('The IP (IPv4 or IPv6) to which the listener should be bound.'),
  captureMode: CaptureMode,
  defaultEndpoint: Str(
    'Where traffic is forwarded: 127.0.0.1:PORT, [::1]:PORT, 0.0.0.0:PORT, [::]:PORT or unix:///path.',
  ),
  tls: ServerTLSSettings,
  connectionPool: ConnectionPoolSettings,
});

const IstioEgressListener = Obj({
  port: Port,
  bind: Str('The IP or the Unix domain socket to which the listener should be bound.'),
  captureMode: CaptureMode,
  hosts: List(Str(), 'Services exposed to the listener, as namespace/dnsName.'),
});

export const SidecarSpec = Obj({
  workloadSelector: LabelsSelector,
  ingress: List(IstioIngressListener, 'Ingress listeners of the sidecar (inbound traffic).'),
  egress: List(IstioEgressListener, 'Egress listeners of the sidecar (outbound traffic).'),
  inboundConnectionPool: ConnectionPoolSettings,
  outboundTrafficPolicy: Obj({
    mode: Enum(['REGISTRY_ONLY', 'ALLOW_ANY'], 'Traffic to unknown destinations: blocked or allowed.'),
    egressProxy: Destination,
  }),
});

export type SidecarSpec = Static<typeof SidecarSpec>;
