/** Semantic validator of each mesh kind, by kind name. */
import type { Findings } from '../findings.js';
import { validateAuthorizationPolicy } from './authorization-policy.js';
import { validateDestinationRule } from './destination-rule.js';
import { validateGateway } from './gateway.js';
import { validatePeerAuthentication } from './peer-authentication.js';
import { validateRequestAuthentication } from './request-authentication.js';
import { validateServiceEntry } from './service-entry.js';
import { validateSidecar } from './sidecar.js';
import { validateVirtualService } from './virtual-service.js';

/** Context a validator may need besides the spec (e.g. the resource's own namespace). */
export interface ValidationContext {
  name: string;
  namespace: string;
  /** The mesh's root namespace (`istio-system` by default). */
  rootNamespace: string;
}

export type SpecValidator = (spec: Record<string, unknown>, f: Findings, ctx: ValidationContext) => void;

export const SEMANTIC_VALIDATORS: Record<string, SpecValidator> = {
  VirtualService: validateVirtualService,
  DestinationRule: validateDestinationRule,
  Gateway: validateGateway,
  ServiceEntry: validateServiceEntry,
  Sidecar: validateSidecar,
  PeerAuthentication: validatePeerAuthentication,
  AuthorizationPolicy: validateAuthorizationPolicy,
  RequestAuthentication: validateRequestAuthentication,
};
