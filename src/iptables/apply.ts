/**
 * Applies generated capture rules to the kernel: the only module here that does I/O.
 *
 * How, and why (compare istio-iptables, which does the same in spirit):
 * - `iptables-restore --noflush`: without --noflush, restore replaces the WHOLE nat table,
 *   deleting rules other components own in the pod's network namespace (CNI portmap, other
 *   init containers). We own only the ISTIO_* chains and the hooks jumping into them, so we
 *   keep --noflush and make ownership explicit instead: `:ISTIO_X - [0:0]` (re)creates and
 *   empties our chains, and stale hooks read from `iptables-save` are `-D`eleted, all inside
 *   the same input. Re-running is therefore idempotent (no duplicated hooks).
 * - One restore per family is one kernel transaction (a single nf_tables batch for
 *   iptables-nft): it applies entirely or not at all, so a bad rule never leaves a half table.
 * - IPv4 and IPv6 are two transactions. Both inputs are checked with `--test` first; if IPv6
 *   still fails after IPv4 went in, IPv4 is reverted to the snapshot taken before.
 * - iptables-nft is preferred (Debian's default and what current kubelets use); the legacy
 *   backend is only used when it is the sole one installed.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { CaptureOptions } from './options.js';
import { captureRules, type Family, renderRestoreInput } from './rules.js';
import { hookRules, type NatSnapshot, parseNatSave, renderRevertInput, toDelete } from './state.js';

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program could not be started at all (e.g. ENOENT). */
  spawnError?: NodeJS.ErrnoException;
}

/** Runs a program with optional stdin; injectable so the applier is testable without root. */
export type Exec = (file: string, args: string[], input?: string) => Promise<ExecResult>;

export interface Backend {
  family: Family;
  save: string;
  restore: string;
}

export class IptablesApplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IptablesApplyError';
  }
}

export interface ApplyResult {
  family: Family;
  restore: string;
  rules: number;
}

export interface ApplyDeps {
  exec?: Exec;
  /** Finds a program on PATH; returns its path or undefined. */
  which?: (name: string) => string | undefined;
}

/** Real process runner: bounded, never throws, captures output. */
export const execFile: Exec = (file, args, input) =>
  new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ code: null, stdout, stderr, spawnError: err }),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => {}); // EPIPE if the program exits early; its exit code says why.
    child.stdin.end(input ?? '');
  });

/** PATH lookup that also searches the sbin directories a non-login shell may lack. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export function findBackend(family: Family, lookup: (name: string) => string | undefined = which): Backend {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  for (const variant of [`${base}-nft`, base]) {
    const restore = lookup(`${variant}-restore`);
    const save = lookup(`${variant}-save`);
    if (restore && save) return { family, save, restore };
  }
  throw new IptablesApplyError(
    `${base}-restore not found on PATH: install iptables (Debian/Ubuntu: apt-get install iptables; ` +
      'Alpine: apk add iptables ip6tables) in the image running `isthmus iptables`',
  );
}

/** Turns a failed iptables run into an actionable message. */
export function explainFailure(tool: string, result: ExecResult): string {
  if (result.spawnError) {
    const code = result.spawnError.code ?? 'error';
    if (code === 'ENOENT') return `${tool} not found: install the iptables package`;
    if (code === 'EACCES') return `${tool} cannot be executed (EACCES): permission denied`;
    return `${tool} could not be started: ${code} (${result.spawnError.message})`;
  }
  const stderr = result.stderr.trim();
  if (/permission denied|operation not permitted|must be root/i.test(stderr)) {
    return (
      `${tool}: permission denied: changing the nat table needs root with the NET_ADMIN capability ` +
      `(give the init container securityContext.capabilities.add [NET_ADMIN, NET_RAW]). ${tool} said: ${stderr}`
    );
  }
  if (/table does not exist|insmod|protocol not supported|no such file or directory/i.test(stderr)) {
    return `${tool}: the kernel's nat table is not available (nf_tables/nf_nat modules). ${tool} said: ${stderr}`;
  }
  return `${tool} failed with exit code ${result.code}: ${stderr || '(no output)'}`;
}

interface Plan {
  backend: Backend;
  snapshot: NatSnapshot;
  input: string;
  hooks: string[];
  rules: number;
}

async function run(exec: Exec, file: string, args: string[], input?: string): Promise<ExecResult> {
  const result = await exec(file, args, input);
  if (result.spawnError || result.code !== 0) throw new IptablesApplyError(explainFailure(file, result));
  return result;
}

/**
 * Installs capture for IPv4 (and IPv6 when `opts.ipv6`). Throws IptablesApplyError with the
 * reason when it cannot; in that case the tables are as they were before.
 */
export async function applyCapture(opts: CaptureOptions, deps: ApplyDeps = {}): Promise<ApplyResult[]> {
  const exec = deps.exec ?? execFile;
  const families: Family[] = opts.ipv6 ? [4, 6] : [4];
  const backends = families.map((family) => findBackend(family, deps.which));

  // Read current state first (read-only). Our old hooks are deleted in the same transaction
  // that adds the new ones; our old chains are emptied by their `:CHAIN` line.
  const plans: Plan[] = [];
  for (const backend of backends) {
    const saved = await run(exec, backend.save, ['-t', 'nat']);
    const snapshot = parseNatSave(saved.stdout);
    const rules = captureRules(opts, backend.family);
    plans.push({
      backend,
      snapshot,
      input: renderRestoreInput(opts, backend.family, snapshot.hooks.map(toDelete)),
      hooks: hookRules(rules),
      rules: rules.length,
    });
  }

  // Dry-run every family in the kernel's parser before committing any, so a family that would
  // fail (bad value, missing ip6 nat support) stops us before the other one is changed.
  for (const plan of plans) await run(exec, plan.backend.restore, ['--noflush', '--test'], plan.input);

  const applied: Plan[] = [];
  for (const plan of plans) {
    try {
      await run(exec, plan.backend.restore, ['--noflush'], plan.input);
      applied.push(plan);
    } catch (err) {
      const reverted = await revert(exec, applied);
      throw new IptablesApplyError(`${(err as Error).message}${reverted}`);
    }
  }
  return plans.map((plan) => ({
    family: plan.backend.family,
    restore: plan.backend.restore,
    rules: plan.rules,
  }));
}

/** Puts already-applied families back to their snapshot; returns a note for the error message. */
async function revert(exec: Exec, applied: Plan[]): Promise<string> {
  const notes: string[] = [];
  for (const plan of applied) {
    const input = renderRevertInput(plan.snapshot, plan.hooks);
    const result = await exec(plan.backend.restore, ['--noflush'], input);
    const ok = !result.spawnError && result.code === 0;
    notes.push(
      ok
        ? `IPv${plan.backend.family} rules were reverted`
        : `reverting IPv${plan.backend.family} ALSO failed: ${explainFailure(plan.backend.restore, result)}`,
    );
  }
  return notes.length > 0 ? ` (${notes.join('; ')})` : '';
}

/** Removes everything we own from the nat table (chains and hooks), for `--cleanup`. */
export async function removeCapture(families: Family[], deps: ApplyDeps = {}): Promise<void> {
  const exec = deps.exec ?? execFile;
  for (const family of families) {
    const backend = findBackend(family, deps.which);
    const snapshot = parseNatSave((await run(exec, backend.save, ['-t', 'nat'])).stdout);
    if (snapshot.chains.size === 0 && snapshot.hooks.length === 0) continue;
    const empty: NatSnapshot = { chains: new Set(), ownedRules: [], hooks: [] };
    await run(exec, backend.restore, ['--noflush'], renderRevertInput(empty, snapshot.hooks));
  }
}
