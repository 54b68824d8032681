/**
 * `isthmus up`: a whole mesh on one machine. Reads the example's manifests, places one "pod" per
 * replica on its own loopback address, starts a sidecar per pod (tables compiled by the real
 * compiler from a snapshot of the manifests' Services + synthetic Pods + the watched mesh
 * directory), starts the apps behind them, and re-compiles and hot-swaps on every change of the
 * mesh directory (an invalid edit is reported and the last good config stays).
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { affectedWorkloads, compileForWorkload, diffSnapshots } from '../compiler/index.js';
import { DirectorySource, type SnapshotEvent } from '../config-source/index.js';
import { buildSnapshot } from '../registry/snapshot.js';
import type { MeshSnapshot } from '../registry/types.js';
import { freePort, LoopbackAllocator } from './addresses.js';
import { AppProcess } from './app-process.js';
import { appEnv } from './env.js';
import { FrontDoor } from './front.js';
import { type LocalManifests, manifestsPath, readManifests } from './manifests.js';
import { baseSnapshot, configNames, overlaySnapshot, type PodPlacement, podNameOf } from './pods.js';
import { pollDirectory } from './poll.js';
import { Reporter } from './report.js';
import { LocalPod, type SidecarLogLevel } from './sidecar.js';

export interface UpOptions {
  /** The example directory (scripts resolve against it). */
  dir: string;
  /** Watched Istio config directory; default `<dir>/mesh`. */
  meshDir?: string;
  /** Kubernetes manifests (file or directory); default `<dir>/k8s`. */
  manifests?: string;
  /** Front page port on 127.0.0.1 (0 = any free port). */
  port: number;
  /** Service the front port leads to; default `productpage` when present, else the first one. */
  front?: string;
  namespace?: string;
  sidecarLogLevel?: SidecarLogLevel;
  /** Stream the apps' output (prefixed); otherwise shown only when an app fails. */
  appLogs?: boolean;
  startTimeoutMs?: number;
  /** Where status lines go (default stdout). */
  print?: (line: string) => void;
}

/** How often a pod is moved to another address when its port is taken at bind time. */
const MAX_PLACEMENT_ATTEMPTS = 4;

/** Front page paths of well-known samples (others: `/`). */
const FRONT_PATHS: Record<string, string> = { productpage: '/productpage' };

export class LocalMesh {
  readonly pods: LocalPod[] = [];
  readonly front = new FrontDoor();
  frontService = '';
  frontPath = '/';
  meshDir: string;
  private source: DirectorySource | undefined;
  private base: MeshSnapshot | undefined;
  private current: MeshSnapshot | undefined;
  private updates: Promise<void> = Promise.resolve();
  private stopPolling: () => void = () => {};
  private readonly ips = new LoopbackAllocator();
  private stopping: Promise<void> | undefined;
  private readonly print: (line: string) => void;
  private readonly report: Reporter;

  constructor(private readonly o: UpOptions) {
    this.meshDir = resolve(o.meshDir ?? resolve(o.dir, 'mesh'));
    this.print = o.print ?? ((line) => process.stdout.write(`${line}\n`));
    this.report = new Reporter(this.print, this.meshDir);
  }

  get frontUrl(): string {
    return `http://127.0.0.1:${this.front.port}${this.frontPath}`;
  }

  /** Starts everything; on failure stops what was started and rethrows. */
  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startAll(): Promise<void> {
    const dir = resolve(this.o.dir);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${this.o.dir}: no such directory`);
    const m = readManifests(this.o.manifests ?? manifestsPath(dir), dir, this.o.namespace ?? 'default');
    for (const w of m.warnings) this.print(`warning: ${w}`);
    this.chooseFront(m);
    await this.front.listen(this.o.port);

    const meshEvent = await this.startSource();
    await this.placePods(m);
    // A port taken between reservation and bind (another process): move that pod, retry.
    for (let attempt = 1; ; attempt++) {
      this.base = baseSnapshot(
        m.objects,
        this.pods.map((p) => p.placement),
      );
      this.current = overlaySnapshot(this.base, meshEvent.snapshot);
      const clash = await this.applyInitial();
      if (clash === undefined) break;
      if (attempt >= MAX_PLACEMENT_ATTEMPTS) throw clash.error;
      await this.movePod(clash.index);
    }
    this.showWarnings();

    const timeout = this.o.startTimeoutMs ?? 15_000;
    if (this.stopping) throw new Error('interrupted');
    for (const pod of this.pods) this.spawnApp(pod, dir);
    await Promise.all(
      this.pods.map((pod) =>
        pod.inboundPorts.length ? pod.app!.waitListening('127.0.0.1', pod.appPort, timeout) : undefined,
      ),
    ).catch((err: unknown) => {
      const failed = this.pods.find((p) => p.app && !p.app.running) ?? undefined;
      const tail = failed?.app?.lastOutput().slice(-10) ?? [];
      throw new Error(
        `${err instanceof Error ? err.message : String(err)}${tail.length ? `; its last output:\n  ${tail.join('\n  ')}` : ''}`,
      );
    });
    const frontPod = this.pods.find((p) => this.selectedByFront(p));
    if (frontPod?.inboundPorts[0] !== undefined) this.front.pointAt(frontPod.ip, frontPod.inboundPorts[0]);
    this.source?.onSnapshot((e) => {
      this.updates = this.updates
        .then(() => this.onMeshChange(e))
        .catch((err: unknown) => {
          this.print(`mesh: update failed: ${err instanceof Error ? err.message : String(err)}`);
        });
    });
  }

  private chooseFront(m: LocalManifests): void {
    const services = m.objects.filter(
      (o): o is { kind: string; metadata: { name: string } } =>
        (o as { kind?: unknown }).kind === 'Service' && (o as { apiVersion?: unknown }).apiVersion === 'v1',
    );
    const names = services.map((s) => s.metadata.name);
    const front = this.o.front ?? (names.includes('productpage') ? 'productpage' : names[0]);
    if (front === undefined) throw new Error('no Service in the manifests to serve as the front page');
    if (!names.includes(front))
      throw new Error(`--front: no Service named ${front} (have: ${names.join(', ')})`);
    this.frontService = front;
    this.frontPath = FRONT_PATHS[front] ?? '/';
  }

  private selectedByFront(p: LocalPod): boolean {
    const snap = this.base;
    const ns = p.placement.workload.identity.namespace;
    const svc = snap?.services.find((s) => s.name === this.frontService && s.namespace === ns);
    const labels = p.placement.workload.identity.labels;
    return !!svc?.selector && Object.entries(svc.selector).every(([k, v]) => labels[k] === v);
  }

  private async startSource(): Promise<SnapshotEvent> {
    if (!existsSync(this.meshDir)) {
      this.print(
        `note: no mesh config directory at ${this.meshDir} (default routing; --mesh <dir> to set one)`,
      );
      return { snapshot: buildSnapshot([]), rejected: [] };
    }
    this.source = new DirectorySource(this.meshDir, { debounceMs: 100 });
    const first = await this.source.start();
    const source = this.source;
    this.stopPolling = pollDirectory(this.meshDir, 500, () => {
      if (!this.stopping) source.reload();
    });
    this.report.rejected(first.rejected);
    return first;
  }

  /** First config of every sidecar; a bind clash (EADDRINUSE) is returned, other errors thrown. */
  private async applyInitial(): Promise<{ index: number; error: Error } | undefined> {
    for (const [index, pod] of this.pods.entries()) {
      const compiled = this.compile(pod);
      await this.ips.release(pod.ip); // its inbound listener binds the reserved port next
      try {
        await pod.apply(compiled);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (!/EADDRINUSE/.test(error.message)) throw error;
        return { index, error };
      }
    }
    return undefined;
  }

  /** Replaces pod `index` with one on a fresh address (its app has not started yet). */
  private async movePod(index: number): Promise<void> {
    const old = this.pods[index]!;
    await old.stop(0);
    const ip = await this.ips.allocate(old.inboundPorts);
    this.print(`note: a port of ${old.ip} was taken meanwhile; ${old.name} moves to ${ip}`);
    const placement: PodPlacement = { ...old.placement, ip };
    this.pods[index] = await LocalPod.create(placement, old.appPort, this.o.sidecarLogLevel ?? 'warn');
  }

  private async placePods(m: LocalManifests): Promise<void> {
    const ips = this.ips;
    for (const w of m.workloads) {
      for (let r = 0; r < w.replicas; r++) {
        const ip = await ips.allocate(w.inboundPorts);
        const placement: PodPlacement = { workload: w, podName: podNameOf(w, r), ip };
        const pod = await LocalPod.create(placement, await freePort(), this.o.sidecarLogLevel ?? 'warn');
        if (this.stopping) {
          await pod.stop(0);
          throw new Error('interrupted');
        }
        this.pods.push(pod);
      }
    }
  }

  private compile(pod: LocalPod) {
    return compileForWorkload(this.current!, pod.placement.workload.identity);
  }

  private spawnApp(pod: LocalPod, dir: string): void {
    const w = pod.placement.workload;
    pod.app = new AppProcess({
      name: pod.name,
      argv: w.argv,
      env: appEnv(pod, w.env),
      cwd: dir,
      ...(this.o.appLogs ? { echo: this.print } : {}),
      // Reported a moment later: on Ctrl-C the terminal signals the apps and `up` together.
      onExit: () => {
        setTimeout(() => {
          if (!this.stopping) this.report.appExit(pod);
        }, 300).unref();
      },
    });
  }

  private showWarnings(): void {
    const all: string[] = [];
    for (const pod of this.pods)
      for (const w of this.compile(pod).warnings) all.push(`${w.resource}: ${w.message}`);
    this.report.warnings(all);
  }

  /** A new snapshot of the mesh directory: recompile the affected workloads and hot-swap. */
  private async onMeshChange(e: SnapshotEvent): Promise<void> {
    if (this.stopping || !this.base || !this.current) return;
    this.report.rejected(e.rejected);
    const next = overlaySnapshot(this.base, e.snapshot);
    const prev = this.current;
    if (next.version === prev.version) return;
    const diff = diffSnapshots(prev, next);
    const identities = [...new Set(this.pods.map((p) => p.placement.workload))].map((w) => w.identity);
    const affected = new Set(affectedWorkloads(prev, next, identities, diff).endpoints);
    this.current = next;
    const updated: string[] = [];
    for (const pod of this.pods) {
      if (!affected.has(pod.placement.workload.identity)) continue;
      if (await pod.apply(this.compile(pod))) updated.push(pod.name);
    }
    this.report.applied(next.version, diff, updated);
    this.showWarnings();
  }

  /** The status shown once everything runs. */
  statusLines(): string[] {
    return this.report.status({
      pods: this.pods,
      frontUrl: this.frontUrl,
      frontService: this.frontService,
      meshDir: this.source ? this.meshDir : undefined,
      configs: this.current ? configNames(this.current) : [],
      version: this.current?.version ?? '',
    });
  }

  /** Stops the watcher, the front port, the apps (SIGTERM, then SIGKILL) and the sidecars. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopPolling();
      await this.ips.release();
      await this.source?.close();
      await this.front.close();
      await Promise.all(this.pods.map((p) => p.app?.stop(3000)));
      await this.updates;
      await Promise.all(this.pods.map((p) => p.stop(500)));
    })();
    return this.stopping;
  }

  /** Second Ctrl-C: kill the apps right away. */
  kill(): void {
    for (const p of this.pods) p.app?.kill();
  }

  /** PIDs of the app processes (tests check that none survives). */
  appPids(): number[] {
    return this.pods.map((p) => p.app?.pid).filter((p): p is number => p !== undefined);
  }
}
