/**
 * Reads what is already in the nat table (from `iptables-save -t nat`) so that applying is
 * idempotent and reversible without flushing rules that belong to others (CNI plugins, other
 * init containers): we only ever touch our own chains and the hooks that jump into them.
 */
import { OWNED_CHAINS } from './rules.js';

const OWNED = new Set<string>(OWNED_CHAINS);

export interface NatSnapshot {
  /** Which of our chains exist. */
  chains: Set<string>;
  /** Rules inside our chains, as `-A` lines. */
  ownedRules: string[];
  /** Rules in other chains (PREROUTING, OUTPUT, ...) that jump into ours, as `-A` lines. */
  hooks: string[];
}

export const EMPTY_SNAPSHOT: NatSnapshot = { chains: new Set(), ownedRules: [], hooks: [] };

export function parseNatSave(text: string): NatSnapshot {
  const snapshot: NatSnapshot = { chains: new Set(), ownedRules: [], hooks: [] };
  let inNat = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat) continue;
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(/\s+/)[0] ?? '';
      if (OWNED.has(chain)) snapshot.chains.add(chain);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(/\s+/)[1] ?? '';
      const target = /\s-[jg]\s+(\S+)/.exec(line)?.[1] ?? '';
      if (OWNED.has(chain)) snapshot.ownedRules.push(line);
      else if (OWNED.has(target)) snapshot.hooks.push(line);
    }
  }
  return snapshot;
}

/** `-A CHAIN spec` -> `-D CHAIN spec`. */
export function toDelete(rule: string): string {
  return rule.replace(/^-A /, '-D ');
}

/** Our hook rules (jumps from built-in chains into ours) among generated rules. */
export function hookRules(rules: string[]): string[] {
  return rules.filter((rule) => !OWNED.has(rule.split(/\s+/)[1] ?? ''));
}

/**
 * A restore input that puts our part of the nat table back to `snapshot`, given the hooks
 * currently installed. With an empty snapshot this removes everything we own (cleanup).
 * Restored hooks are appended to their chain, so their position relative to foreign rules
 * may change; their content does not.
 */
export function renderRevertInput(snapshot: NatSnapshot, currentHooks: string[]): string {
  const missing = OWNED_CHAINS.filter((chain) => !snapshot.chains.has(chain));
  return [
    '# isthmus iptables: revert (iptables-restore --noflush input)',
    '*nat',
    ...OWNED_CHAINS.map((chain) => `:${chain} - [0:0]`),
    ...currentHooks.map(toDelete),
    ...missing.map((chain) => `-X ${chain}`),
    ...snapshot.ownedRules,
    ...snapshot.hooks,
    'COMMIT',
    '',
  ].join('\n');
}
