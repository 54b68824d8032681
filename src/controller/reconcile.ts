/**
 * The reconcile loop: KubernetesSource -> compile (only the workload classes a change
 * affects, plus new ones) -> Publisher. Leader election decides which replica writes; every
 * replica keeps its informers and compiled state warm, so a takeover publishes at once.
 */

import { hostname } from 'node:os';
import { affectedWorkloads, compileForWorkload } from '../compiler/index.js';
import { type ClusterSnapshotEvent, KubernetesSource } from '../config-source/kubernetes.js';
import type { ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import type { KubeRest } from '../config-source/kubernetes-rest.js';
import { type ClassResult, classId, exportScopes, Publisher } from '../publish/index.js';
import type { MeshSnapshot } from '../registry/types.js';
import { workloadIdentityKey } from '../registry/workloads.js';
import { EventRecorder } from './events.js';
import { LeaderElector } from './leader.js';
import { STATUS_KINDS, StatusWriter } from './status.js';

export interface ReconcilerOptions {
  rest: KubeRest;
  /** Controller namespace (endpoint shards, the Lease). */
  namespace: string;
  rootNamespace: string;
  /** Run leader election (default true); false = always write (single replica, tests). */
  leaderElection?: boolean;
  leaseDurationMs?: number;
  retryPeriodMs?: number;
  identity?: string;
  debounceMs?: number;
  resyncMs?: number;
  backoffMaxMs?: number;
  log?: ReflectorLogger;
  /** Write status conditions and Events on mesh resources (default true). */
  status?: boolean;
}

export interface ReconcileStats {
  events: number;
  /** Classes compiled at the last event, and in total. */
  lastCompiled: number;
  lastCompileMs: number;
  compiled: number;
  classes: number;
}

export interface RunningReconciler {
  source: KubernetesSource;
  publisher: Publisher;
  /** Status conditions + Events of mesh resources (absent when `status: false`). */
  status?: StatusWriter;
  elector?: LeaderElector;
  stats: ReconcileStats;
  isLeader(): boolean;
  /** Resolves when the latest source event has been compiled and written (tests, bench). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startReconciler(opts: ReconcilerOptions): Promise<RunningReconciler> {
  const log = opts.log;
  const stats: ReconcileStats = { events: 0, lastCompiled: 0, lastCompileMs: 0, compiled: 0, classes: 0 };
  let elector: LeaderElector | undefined;
  const publisher = new Publisher({
    rest: opts.rest,
    namespace: opts.namespace,
    // The source already coalesces bursts (~100 ms); the publisher only merges events that
    // arrive while a write pass is running.
    debounceMs: 10,
    isLeader: () => elector?.isLeader() ?? true,
    ...(log ? { log } : {}),
  });
  const source = new KubernetesSource({
    rest: opts.rest,
    mesh: { rootNamespace: opts.rootNamespace },
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
    ...(opts.resyncMs !== undefined ? { resyncMs: opts.resyncMs } : {}),
    ...(opts.backoffMaxMs !== undefined ? { backoffMaxMs: opts.backoffMaxMs } : {}),
    ...(log ? { log } : {}),
  });

  const identity = opts.identity ?? `${hostname()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const status =
    opts.status === false
      ? undefined
      : new StatusWriter({
          rest: opts.rest,
          objects: () => source.objectsOf(STATUS_KINDS),
          rootNamespace: opts.rootNamespace,
          isLeader: () => elector?.isLeader() ?? true,
          events: new EventRecorder(opts.rest, identity, log),
          ...(log ? { log } : {}),
        });

  const results = new Map<string, ClassResult>();
  let previous: MeshSnapshot | undefined;
  const onEvent = (e: ClusterSnapshotEvent) => {
    const started = performance.now();
    const byId = new Map(e.workloads.map((w) => [classId(w), w]));
    const recompile = new Set<string>();
    // New classes, and classes whose identity changed beyond the class key (node locality).
    for (const [id, w] of byId) {
      const prev = results.get(id)?.workload;
      if (!prev || workloadIdentityKey(prev) !== workloadIdentityKey(w)) recompile.add(id);
    }
    if (previous) {
      const affected = affectedWorkloads(previous, e.snapshot, e.workloads);
      for (const w of affected.endpoints) recompile.add(classId(w));
    } else for (const id of byId.keys()) recompile.add(id);
    for (const id of [...results.keys()]) if (!byId.has(id)) results.delete(id);
    for (const id of recompile) {
      const workload = byId.get(id)!;
      results.set(id, { id, workload, result: compileForWorkload(e.snapshot, workload) });
    }
    previous = e.snapshot;
    stats.events++;
    stats.lastCompiled = recompile.size;
    stats.compiled += recompile.size;
    stats.classes = results.size;
    stats.lastCompileMs = performance.now() - started;
    log?.debug('snapshot compiled', {
      version: e.snapshot.version,
      compiled: recompile.size,
      classes: results.size,
      rejected: e.rejected.length,
    });
    publisher.publish([...results.values()], exportScopes(e.snapshot.services));
    status?.update([...results.values()].flatMap((r) => r.result.warnings));
  };

  const first = await source.start();
  onEvent(first);
  source.onSnapshot(onEvent);

  if (opts.leaderElection !== false) {
    elector = new LeaderElector({
      rest: opts.rest,
      namespace: opts.namespace,
      identity,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      ...(opts.retryPeriodMs ? { retryPeriodMs: opts.retryPeriodMs } : {}),
      onStartedLeading: () => {
        publisher.resync();
        status?.resync();
      },
      ...(log ? { log } : {}),
    });
    elector.start();
  }

  return {
    source,
    publisher,
    ...(status ? { status } : {}),
    ...(elector ? { elector } : {}),
    stats,
    isLeader: () => elector?.isLeader() ?? true,
    async idle() {
      await publisher.idle();
      await status?.idle();
    },
    async stop() {
      await source.close();
      publisher.close();
      status?.close();
      await elector?.stop();
    },
  };
}
