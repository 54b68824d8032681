/** Types shared by the security.istio.io kinds (istio.type.v1beta1). */
import { WorkloadSelector } from '../networking/common.js';
import { List, Obj, type Static, Str } from '../schema-kit.js';

export { WorkloadSelector };

/**
 * PolicyTargetReference (GEP-713): the resource a policy attaches to instead of a workload
 * selector. Istio accepts a Service, a ServiceEntry, a Gateway API Gateway or GatewayClass.
 */
export const PolicyTargetReference = Obj(
  {
    group: Str('The group of the target resource ("" for the core group).'),
    kind: Str('The kind of the target resource, e.g. Gateway or Service.'),
    name: Str('The name of the target resource.'),
    namespace: Str("The namespace of the referent; Istio only supports the policy's own namespace."),
  },
  'The resource the policy applies to.',
  ['kind', 'name'],
);

export const PolicyTargetReferences = List(
  PolicyTargetReference,
  'Resources the policy applies to (at most 16).',
);

export type PolicyTargetReference = Static<typeof PolicyTargetReference>;
