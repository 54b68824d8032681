/**
 * What validation produces: a list of findings, each with the field path and a sentence.
 * Validators never throw; they accumulate (Istio's Validation{Err, Warning}, with paths).
 */
import type { MessageName } from './messages.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  /** Field path in the object, e.g. `spec.http[0].route[1].weight`. */
  path: string;
  severity: Severity;
  message: string;
  /** Istio analysis message type (messages.ts), for cross-resource findings that have one. */
  code?: MessageName;
}

export class Findings {
  readonly items: Finding[] = [];

  error(path: string, message: string): void {
    this.items.push({ path, severity: 'error', message });
  }

  warn(path: string, message: string): void {
    this.items.push({ path, severity: 'warning', message });
  }

  get hasErrors(): boolean {
    return this.items.some((f) => f.severity === 'error');
  }
}

/** `at('spec.http', 2)` -> `spec.http[2]`; `at('spec', 'hosts')` -> `spec.hosts`. */
export function at(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}
