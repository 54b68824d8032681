/** AuthorizationPolicy (security.istio.io): access control (ALLOW, DENY, AUDIT, CUSTOM) on workloads. */
import { Enum, List, Obj, type Static, Str } from '../schema-kit.js';
import { PolicyTargetReference, PolicyTargetReferences, WorkloadSelector } from './common.js';

export const AUTHZ_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;

const Strings = (description: string) => List(Str(), description);

const Source = Obj({
  principals: Strings(
    'Peer identities from the peer certificate, e.g. cluster.local/ns/default/sa/productpage.',
  ),
  notPrincipals: Strings('Negative match of peer identities.'),
  requestPrincipals: Strings('Request identities from the JWT, in the form <iss>/<sub>.'),
  notRequestPrincipals: Strings('Negative match of request identities.'),
  namespaces: Strings('Namespaces of the peer, from the peer certificate.'),
  notNamespaces: Strings('Negative match of namespaces.'),
  serviceAccounts: Strings('Kubernetes service accounts of the peer, as <namespace>/<serviceaccount>.'),
  notServiceAccounts: Strings('Negative match of service accounts.'),
  ipBlocks: Strings('IP addresses or CIDR blocks of the source address of the IP packet.'),
  notIpBlocks: Strings('Negative match of IP blocks.'),
  remoteIpBlocks: Strings('IP addresses or CIDR blocks from X-Forwarded-For or the proxy protocol.'),
  notRemoteIpBlocks: Strings('Negative match of remote IP blocks.'),
});

const Operation = Obj({
  hosts: Strings('Hosts as specified in the HTTP request (case-insensitive). HTTP only.'),
  notHosts: Strings('Negative match of hosts.'),
  ports: Strings('Destination ports of the connection, as strings.'),
  notPorts: Strings('Negative match of ports.'),
  methods: Strings('HTTP methods (always POST for gRPC). HTTP only.'),
  notMethods: Strings('Negative match of methods.'),
  paths: Strings(
    'Request paths after normalization; exact, prefix (/api/*), suffix (*.html), * or {*}/{**} templates.',
  ),
  notPaths: Strings('Negative match of paths.'),
});

const Condition = Obj(
  {
    key: Str('The name of an Istio attribute, e.g. request.headers[User-Agent] or source.ip.'),
    values: Strings('Allowed values of the attribute.'),
    notValues: Strings('Negative match of values of the attribute.'),
  },
  'An additional condition; at least one of values or notValues must be set.',
  ['key'],
);

const Rule = Obj({
  from: List(Obj({ source: Source }), 'Sources of the request; any source when not set.'),
  to: List(Obj({ operation: Operation }), 'Operations of the request; any operation when not set.'),
  when: List(Condition, 'Additional conditions, all of which must match.'),
});

export const AuthorizationPolicySpec = Obj({
  selector: WorkloadSelector,
  targetRef: PolicyTargetReference,
  targetRefs: PolicyTargetReferences,
  rules: List(
    Rule,
    'Rules to match the request; a match occurs when at least one rule matches. Never matches when not set.',
  ),
  action: Enum(
    [...AUTHZ_ACTIONS],
    'The action to take if the request is matched with the rules. Default is ALLOW.',
  ),
  provider: Obj(
    { name: Str('The name of an extension provider defined in MeshConfig.') },
    'The extension provider of the CUSTOM action. Must be used only with CUSTOM.',
  ),
});

export type AuthorizationPolicySpec = Static<typeof AuthorizationPolicySpec>;
export type AuthorizationRule = Static<typeof Rule>;
export type AuthorizationSource = Static<typeof Source>;
export type AuthorizationOperation = Static<typeof Operation>;
export type AuthorizationCondition = Static<typeof Condition>;
