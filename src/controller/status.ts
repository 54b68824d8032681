/**
 * Status of mesh resources, in Istio's shape (istio.meta.v1alpha1.IstioStatus):
 *
 *   status:
 *     conditions: [{type: Reconciled, status: "True"|"False", lastTransitionTime, reason, message, observedGeneration}]
 *     observedGeneration: <metadata.generation>
 *     validationMessages: [{level: ERROR|WARNING|INFO, type: {code: IST0101, name: ReferencedResourceNotFound}, description}]
 *
 * What goes in: the findings of `isthmus analyze` over all mesh objects (schema errors and
 * cross-resource checks, with their codes; one source of truth for both) and the compiler's
 * warnings (a subset that selects no pod, a host no workload can see, an unsupported field).
 * `Reconciled` is False when any message is at level ERROR (reason = that message's type
 * name), True ("Accepted") otherwise.
 *
 * How it is written: only by the leader, through a JSON merge patch of the status
 * subresource (no resourceVersion: status is ours, the spec is never touched, other
 * condition types are kept), only when the desired status differs from the object's, in
 * passes that coalesce like the publisher's. An Event is recorded when the state (condition
 * status, reason, messages) changes, never for a status write alone.
 */
import { findKindByGroupKind, KINDS } from '../api/kinds.js';
import type { CompileWarning } from '../compiler/warnings.js';
import { warningCode } from '../compiler/warnings.js';
import type { ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import { KubeApiError, type KubeObject, type KubeRest } from '../config-source/kubernetes-rest.js';
import { canonicalJson } from '../registry/hash.js';
import { SerialPass } from '../util/serial-pass.js';
import { type AnalyzedDocument, analyze } from '../validation/analyze.js';
import type { Finding } from '../validation/findings.js';
import { MESSAGES, type MessageLevel, type MessageName, messageNameOf } from '../validation/messages.js';
import type { EventRecorder } from './events.js';

export const RECONCILED = 'Reconciled';
export const ACCEPTED = 'Accepted';
/** Every mesh kind: all of them declare the status subresource (src/api/crd.ts). */
export const STATUS_KINDS: ReadonlySet<string> = new Set(KINDS.map((k) => k.kind));

export interface ValidationMessage {
  level: MessageLevel;
  type: { code: string; name: string };
  description: string;
}

export interface ReconciledCondition {
  type: typeof RECONCILED;
  status: 'True' | 'False';
  lastTransitionTime?: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

export interface MeshResourceStatus {
  conditions: ReconciledCondition[];
  observedGeneration?: number;
  validationMessages: ValidationMessage[];
}

const message = (name: MessageName, description: string): ValidationMessage => ({
  level: MESSAGES[name].level,
  type: { code: MESSAGES[name].code, name: MESSAGES[name].name },
  description,
});

const LEVEL_ORDER: Record<MessageLevel, number> = { ERROR: 0, WARNING: 1, INFO: 2 };

function fromFinding(f: Finding): ValidationMessage {
  return message(messageNameOf(f), f.path ? `${f.path}: ${f.message}` : f.message);
}

/** `subset "v9"` named in a message: the same missing subset found by analyze and by the compiler. */
const subsetOf = (s: string) => /subset "([^"]*)"/.exec(s)?.[1];

/** The desired status of one object from its findings (analyze) and compile warnings. */
export function desiredStatus(
  generation: number | undefined,
  findings: readonly Finding[],
  warnings: readonly CompileWarning[],
): MeshResourceStatus {
  const msgs = findings.map(fromFinding);
  for (const w of warnings) {
    const name = warningCode(w);
    // analyze already reports subsets no DestinationRule defines (with the field path).
    const sub = subsetOf(w.message);
    if (
      name === 'ReferencedResourceNotFound' &&
      sub !== undefined &&
      msgs.some((m) => m.type.code === MESSAGES[name].code && subsetOf(m.description) === sub)
    )
      continue;
    msgs.push(message(name, w.message));
  }
  const unique = new Map<string, ValidationMessage>();
  for (const m of msgs) unique.set(`${m.type.code}\0${m.description}`, m);
  const sorted = [...unique.values()].sort(
    (a, b) =>
      LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level] ||
      (a.type.code < b.type.code ? -1 : a.type.code > b.type.code ? 1 : 0) ||
      (a.description < b.description ? -1 : a.description > b.description ? 1 : 0),
  );
  const errors = sorted.filter((m) => m.level === 'ERROR');
  const warningCount = sorted.length - errors.length;
  const condition: ReconciledCondition = errors.length
    ? {
        type: RECONCILED,
        status: 'False',
        reason: errors[0]!.type.name,
        message: `${errors[0]!.type.code}: ${errors[0]!.description}${errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : ''}`,
      }
    : {
        type: RECONCILED,
        status: 'True',
        reason: ACCEPTED,
        message: warningCount
          ? `accepted with ${warningCount} warning${warningCount > 1 ? 's' : ''}`
          : 'accepted',
      };
  if (generation !== undefined) condition.observedGeneration = generation;
  return {
    conditions: [condition],
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    validationMessages: sorted,
  };
}

interface CurrentStatus {
  conditions?: Array<Record<string, unknown>>;
  observedGeneration?: unknown;
  validationMessages?: unknown;
}

const currentOf = (o: KubeObject): CurrentStatus =>
  (o.status && typeof o.status === 'object' ? o.status : {}) as CurrentStatus;

const reconciledOf = (s: CurrentStatus) =>
  (Array.isArray(s.conditions) ? s.conditions : []).find((c) => c?.type === RECONCILED);

/** What must match for a write to be skipped (everything but lastTransitionTime). */
function comparable(s: CurrentStatus | MeshResourceStatus): string {
  const c = reconciledOf(s as CurrentStatus);
  return canonicalJson({
    c: c ? [c.status, c.reason, c.message, c.observedGeneration ?? null] : null,
    g: s.observedGeneration ?? null,
    m: Array.isArray(s.validationMessages) && s.validationMessages.length ? s.validationMessages : [],
  });
}

/** The state an Event reports: condition status, reason, messages (not the generation). */
function stateOf(s: CurrentStatus | MeshResourceStatus): string {
  const c = reconciledOf(s as CurrentStatus);
  if (!c) return '';
  const m = Array.isArray(s.validationMessages) ? s.validationMessages : [];
  return canonicalJson([c.status, c.reason, m]);
}

export function statusPath(o: KubeObject): string | undefined {
  const [group, version] = (o.apiVersion ?? '').split('/');
  const info = group ? findKindByGroupKind(group, o.kind ?? '') : undefined;
  if (!info || !version || !o.metadata?.name) return undefined;
  return `/apis/${group}/${version}/namespaces/${o.metadata.namespace ?? 'default'}/${info.plural}/${o.metadata.name}/status`;
}

export interface StatusWriterOptions {
  rest: KubeRest;
  /** The watched mesh objects (with their current status), read at each pass. */
  objects: () => KubeObject[];
  rootNamespace: string;
  isLeader: () => boolean;
  events?: EventRecorder;
  concurrency?: number;
  log?: ReflectorLogger;
}

export interface StatusWriterStats {
  passes: number;
  writes: number;
  skipped: number;
  events: number;
  errors: number;
  lastError?: string;
}

const keyOf = (o: KubeObject) => `${o.kind} ${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`;

export class StatusWriter {
  readonly stats: StatusWriterStats = { passes: 0, writes: 0, skipped: 0, events: 0, errors: 0 };
  private warnings: readonly CompileWarning[] | undefined;
  /** Analysis is redone only when a mesh object's generation (spec) changed. */
  private analysis: { key: string; byKey: Map<string, AnalyzedDocument> } | undefined;
  /** Object key -> [resourceVersion it had when we wrote, comparable we wrote] (until the watch catches up). */
  private readonly inflight = new Map<string, [string, string]>();
  private readonly passes = new SerialPass(() => this.pass());

  constructor(private readonly opts: StatusWriterOptions) {}

  /** The compile warnings of the latest snapshot (all classes); statuses follow. */
  update(warnings: readonly CompileWarning[]): void {
    this.warnings = warnings;
    this.passes.schedule(0);
  }

  /** After gaining leadership: write whatever differs. */
  resync(): void {
    this.inflight.clear();
    this.passes.schedule(0);
  }

  idle(): Promise<void> {
    return this.passes.idle();
  }

  close(): void {
    this.passes.close();
  }

  private analyzed(objects: readonly KubeObject[]): Map<string, AnalyzedDocument> {
    const key = objects
      .map((o) => `${o.metadata?.uid}:${(o.metadata as { generation?: number }).generation}`)
      .sort()
      .join(',');
    if (this.analysis?.key === key) return this.analysis.byKey;
    // Status is not part of what analyze reads; strip it so the objects are only spec.
    const docs = analyze(
      objects.map((o) => ({ source: keyOf(o), object: { ...o, status: undefined } })),
      { rootNamespace: this.opts.rootNamespace },
    );
    const byKey = new Map(docs.map((d) => [d.source, d]));
    this.analysis = { key, byKey };
    return byKey;
  }

  private async pass(): Promise<void> {
    this.passes.succeeded();
    if (!this.warnings || !this.opts.isLeader()) return;
    const objects = this.opts.objects().filter((o) => STATUS_KINDS.has(o.kind ?? ''));
    const byResource = new Map<string, CompileWarning[]>();
    for (const w of this.warnings) {
      const list = byResource.get(w.resource);
      if (list) list.push(w);
      else byResource.set(w.resource, [w]);
    }
    let analysis: Map<string, AnalyzedDocument>;
    try {
      analysis = this.analyzed(objects);
    } catch (err) {
      this.stats.errors++;
      this.stats.lastError = String(err);
      return;
    }
    const live = new Set<string>();
    const jobs: Array<() => Promise<void>> = [];
    for (const o of objects) {
      const key = keyOf(o);
      live.add(key);
      const generation = (o.metadata as { generation?: number }).generation;
      const desired = desiredStatus(generation, analysis.get(key)?.findings ?? [], byResource.get(key) ?? []);
      const current = currentOf(o);
      const want = comparable(desired);
      const inflight = this.inflight.get(key);
      if (
        comparable(current) === want ||
        (inflight !== undefined && inflight[0] === o.metadata?.resourceVersion && inflight[1] === want)
      ) {
        this.stats.skipped++;
        continue;
      }
      jobs.push(() => this.write(o, key, current, desired, want));
    }
    for (const k of this.inflight.keys()) if (!live.has(k)) this.inflight.delete(k);
    this.opts.events?.retain(new Set(objects.map((o) => o.metadata?.uid ?? '')));
    let i = 0;
    const worker = async () => {
      while (i < jobs.length && this.opts.isLeader()) await jobs[i++]!();
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency ?? 8, jobs.length) }, worker));
    this.stats.passes++;
  }

  private async write(
    o: KubeObject,
    key: string,
    current: CurrentStatus,
    desired: MeshResourceStatus,
    want: string,
  ): Promise<void> {
    const path = statusPath(o);
    if (!path) return;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const prev = reconciledOf(current);
    const cond = desired.conditions[0]!;
    cond.lastTransitionTime =
      prev && prev.status === cond.status && typeof prev.lastTransitionTime === 'string'
        ? prev.lastTransitionTime
        : now;
    const others = (Array.isArray(current.conditions) ? current.conditions : []).filter(
      (c) => c?.type !== RECONCILED,
    );
    try {
      await this.opts.rest.mergePatch(path, {
        status: {
          conditions: [...others, cond],
          ...(desired.observedGeneration !== undefined
            ? { observedGeneration: desired.observedGeneration }
            : {}),
          validationMessages: desired.validationMessages.length ? desired.validationMessages : null,
        },
      });
      this.stats.writes++;
      this.inflight.set(key, [o.metadata?.resourceVersion ?? '', want]);
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return; // deleted meanwhile
      this.stats.errors++;
      this.stats.lastError = err instanceof Error ? err.message : String(err);
      this.passes.backoff();
      this.opts.log?.warn('could not write the status of a mesh resource; retrying', {
        resource: key,
        error: this.stats.lastError,
      });
      return;
    }
    if (this.opts.events && stateOf(current) !== stateOf(desired)) {
      this.stats.events++;
      await this.opts.events.emit(o, {
        type: cond.status === 'True' && desired.validationMessages.length === 0 ? 'Normal' : 'Warning',
        reason: cond.reason,
        message:
          desired.validationMessages.length > 1 || cond.status === 'True'
            ? [
                cond.message,
                ...desired.validationMessages.map((m) => `${m.type.code} ${m.description}`),
              ].join('; ')
            : cond.message,
      });
    }
  }
}
