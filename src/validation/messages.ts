/**
 * Istio's analysis message types (pkg/config/analysis/msg/messages.yaml): the codes that
 * `isthmus analyze` attaches to its findings and the controller writes into
 * `status.validationMessages` of mesh resources. One table, so both say the same thing.
 */

export type MessageLevel = 'ERROR' | 'WARNING' | 'INFO';

export interface MessageType {
  /** `IST0101`. */
  code: string;
  /** `ReferencedResourceNotFound`. */
  name: string;
  /** Istio's level for the type. */
  level: MessageLevel;
}

const type = (code: string, name: string, level: MessageLevel): MessageType => ({ code, name, level });

export const MESSAGES = {
  InternalError: type('IST0001', 'InternalError', 'ERROR'),
  ReferencedResourceNotFound: type('IST0101', 'ReferencedResourceNotFound', 'ERROR'),
  SchemaValidationError: type('IST0106', 'SchemaValidationError', 'ERROR'),
  ConflictingMeshGatewayVirtualServiceHosts: type(
    'IST0109',
    'ConflictingMeshGatewayVirtualServiceHosts',
    'ERROR',
  ),
  SchemaWarning: type('IST0133', 'SchemaWarning', 'WARNING'),
  DestinationRuleSubsetNotSelectPods: type('IST0173', 'DestinationRuleSubsetNotSelectPods', 'ERROR'),
} as const satisfies Record<string, MessageType>;

export type MessageName = keyof typeof MESSAGES;

/** The message type of a finding; findings without a code are schema verdicts (IST0106 / IST0133). */
export function messageNameOf(f: { code?: MessageName; severity: 'error' | 'warning' }): MessageName {
  return f.code ?? (f.severity === 'error' ? 'SchemaValidationError' : 'SchemaWarning');
}
