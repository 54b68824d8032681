/**
 * Why part of the config was not applied (an unsupported field, a subset matching no rule):
 * the controller turns these into status conditions (validationMessages with Istio's analysis
 * codes, see validation/messages.ts) and Events. Never thrown.
 */
import type { MessageName } from '../validation/messages.js';

export interface CompileWarning {
  /** `VirtualService shop/reviews` or `DestinationRule shop/reviews`. */
  resource: string;
  message: string;
  /** Istio analysis message type; absent = classified by `warningCode`. */
  code?: MessageName;
}

export type Warn = (resource: string, message: string, code?: MessageName) => void;

/**
 * The message type of a warning. Callers that know it pass it; the rest are recognised by
 * their wording here (one place), and anything else is a schema warning (IST0133: a field
 * the proxy does not honour).
 */
export function warningCode(w: CompileWarning): MessageName {
  if (w.code) return w.code;
  if (/^subset "[^"]*" of \S+ matches no ready endpoint/.test(w.message))
    return 'DestinationRuleSubsetNotSelectPods';
  if (/ does not exist; skipped$|is not defined by any |is not a service visible to /.test(w.message))
    return 'ReferencedResourceNotFound';
  return 'SchemaWarning';
}

export class Warnings {
  private readonly seen = new Set<string>();
  readonly items: CompileWarning[] = [];
  readonly warn: Warn = (resource, message, code) => {
    const key = `${resource}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.items.push(code ? { resource, message, code } : { resource, message });
  };

  sorted(): CompileWarning[] {
    return [...this.items].sort((a, b) =>
      a.resource < b.resource
        ? -1
        : a.resource > b.resource
          ? 1
          : a.message < b.message
            ? -1
            : a.message > b.message
              ? 1
              : 0,
    );
  }
}
