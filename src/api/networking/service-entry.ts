/** ServiceEntry (networking.istio.io): adds entries to the mesh's internal service registry. */

import { Enum, List, MapOf, Obj, type Static, Str, StrMap, UInt } from '../schema-kit.js';
import { LabelsSelector, Port } from './common.js';

/** An endpoint of a ServiceEntry (WorkloadEntry). */
export const WorkloadEntry = Obj({
  address: Str('Address of the endpoint: an IP, a hostname (DNS resolution) or unix:///path.'),
  ports: MapOf(UInt(), 'Map of service port names to endpoint port numbers.'),
  labels: StrMap('One or more labels associated with the endpoint.'),
  network: Str('The network of the endpoint.'),
  locality: Str('The locality of the endpoint (region/zone/subzone).'),
  weight: UInt('The load balancing weight of the endpoint.'),
  serviceAccount: Str('The service account of the workload.'),
});

export const ServiceEntrySpec = Obj({
  hosts: List(Str(), 'The hosts associated with the ServiceEntry.'),
  addresses: List(Str(), 'The virtual IP addresses (or CIDR blocks) associated with the service.'),
  ports: List(Port, 'The ports associated with the external service.'),
  location: Enum(['MESH_EXTERNAL', 'MESH_INTERNAL'], 'Whether the service is part of the mesh.'),
  resolution: Enum(
    ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'],
    'Service resolution mode for the hosts (NONE when unset).',
  ),
  endpoints: List(WorkloadEntry, 'One or more endpoints associated with the service.'),
  workloadSelector: LabelsSelector,
  exportTo: List(Str(), 'A list of namespaces to which this service is exported.'),
  subjectAltNames: List(
    Str(),
    'Subject alternate names allowed in the certificates of the service workloads.',
  ),
});

export type ServiceEntrySpec = Static<typeof ServiceEntrySpec>;
export type WorkloadEntry = Static<typeof WorkloadEntry>;
