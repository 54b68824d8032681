/**
 * The registry of mesh kinds: the one place that says which kinds exist, in which group and
 * versions, and which schema describes each spec. CRDs, validators and types derive from it.
 */

import { NETWORKING_GROUP, NETWORKING_VERSIONS, SECURITY_GROUP, SECURITY_VERSIONS } from './groups.js';
import { DestinationRuleSpec } from './networking/destination-rule.js';
import { GatewaySpec } from './networking/gateway.js';
import { ServiceEntrySpec } from './networking/service-entry.js';
import { SidecarSpec } from './networking/sidecar.js';
import { VirtualServiceSpec } from './networking/virtual-service.js';
import type { TSchema } from './schema-kit.js';
import { AuthorizationPolicySpec } from './security/authorization-policy.js';
import { PeerAuthenticationSpec } from './security/peer-authentication.js';
import { RequestAuthenticationSpec } from './security/request-authentication.js';

export interface KindInfo {
  kind: string;
  group: string;
  /** Served versions; the first is the storage version. */
  versions: readonly string[];
  plural: string;
  singular: string;
  shortNames: string[];
  spec: TSchema;
  /** Extra columns `kubectl get` shows, as Istio's CRDs define them. */
  printerColumns?: Array<{ name: string; type: string; jsonPath: string; description: string }>;
}

const networking = (k: Omit<KindInfo, 'group' | 'versions'>): KindInfo => ({
  ...k,
  group: NETWORKING_GROUP,
  versions: NETWORKING_VERSIONS,
});
const security = (k: Omit<KindInfo, 'group' | 'versions'>): KindInfo => ({
  ...k,
  group: SECURITY_GROUP,
  versions: SECURITY_VERSIONS,
});

export const KINDS: readonly KindInfo[] = [
  networking({
    kind: 'VirtualService',
    plural: 'virtualservices',
    singular: 'virtualservice',
    shortNames: ['vs'],
    spec: VirtualServiceSpec,
    printerColumns: [
      {
        name: 'Gateways',
        type: 'string',
        jsonPath: '.spec.gateways',
        description: 'The names of gateways and sidecars that should apply these routes',
      },
      {
        name: 'Hosts',
        type: 'string',
        jsonPath: '.spec.hosts',
        description: 'The destination hosts to which traffic is being sent',
      },
    ],
  }),
  networking({
    kind: 'DestinationRule',
    plural: 'destinationrules',
    singular: 'destinationrule',
    shortNames: ['dr'],
    spec: DestinationRuleSpec,
    printerColumns: [
      {
        name: 'Host',
        type: 'string',
        jsonPath: '.spec.host',
        description: 'The name of a service from the service registry',
      },
    ],
  }),
  networking({
    kind: 'Gateway',
    plural: 'gateways',
    singular: 'gateway',
    shortNames: ['gw'],
    spec: GatewaySpec,
  }),
  networking({
    kind: 'ServiceEntry',
    plural: 'serviceentries',
    singular: 'serviceentry',
    shortNames: ['se'],
    spec: ServiceEntrySpec,
    printerColumns: [
      {
        name: 'Hosts',
        type: 'string',
        jsonPath: '.spec.hosts',
        description: 'The hosts associated with the ServiceEntry',
      },
      {
        name: 'Location',
        type: 'string',
        jsonPath: '.spec.location',
        description:
          'Whether the service is external to the mesh or part of the mesh (MESH_EXTERNAL or MESH_INTERNAL)',
      },
      {
        name: 'Resolution',
        type: 'string',
        jsonPath: '.spec.resolution',
        description: 'Service resolution mode for the hosts (NONE, STATIC, or DNS)',
      },
    ],
  }),
  networking({ kind: 'Sidecar', plural: 'sidecars', singular: 'sidecar', shortNames: [], spec: SidecarSpec }),
  security({
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    singular: 'peerauthentication',
    shortNames: ['pa'],
    spec: PeerAuthenticationSpec,
    printerColumns: [
      {
        name: 'Mode',
        type: 'string',
        jsonPath: '.spec.mtls.mode',
        description: 'Defines the mTLS mode used for peer authentication.',
      },
    ],
  }),
  security({
    kind: 'AuthorizationPolicy',
    plural: 'authorizationpolicies',
    singular: 'authorizationpolicy',
    shortNames: ['ap'],
    spec: AuthorizationPolicySpec,
    printerColumns: [
      { name: 'Action', type: 'string', jsonPath: '.spec.action', description: 'The operation to take.' },
    ],
  }),
  security({
    kind: 'RequestAuthentication',
    plural: 'requestauthentications',
    singular: 'requestauthentication',
    shortNames: ['ra'],
    spec: RequestAuthenticationSpec,
  }),
];

const byGroupKind = new Map(KINDS.map((k) => [`${k.group}/${k.kind}`, k]));

/** Looks a kind up by `apiVersion` (`group/version`) and `kind`; undefined when not a mesh kind. */
export function findKind(
  apiVersion: unknown,
  kind: unknown,
): { info: KindInfo; version: string } | undefined {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return undefined;
  const slash = apiVersion.lastIndexOf('/');
  if (slash < 0) return undefined;
  const info = byGroupKind.get(`${apiVersion.slice(0, slash)}/${kind}`);
  return info ? { info, version: apiVersion.slice(slash + 1) } : undefined;
}

export function findKindByGroupKind(group: string, kind: string): KindInfo | undefined {
  return byGroupKind.get(`${group}/${kind}`);
}
