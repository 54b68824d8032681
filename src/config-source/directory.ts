/**
 * Local mode: a directory of YAML/JSON (Kubernetes objects + Istio config, any nesting) is the
 * mesh. Changes are picked up with fs.watch (recursive), debounced so an editor's burst of
 * writes is one reload; a file that no longer parses keeps its previous objects, an invalid
 * object keeps its previous version, and both are reported.
 */
import { type FSWatcher, watch } from 'node:fs';
import { loadDocuments, parseDocuments } from '../cli/documents.js';
import { buildSnapshot } from '../registry/snapshot.js';
import type { MeshSettings, MeshSnapshot } from '../registry/types.js';
import type { ConfigSource, RejectedDocument, SnapshotEvent } from './types.js';
import { acceptDocuments } from './validate.js';

export interface DirectorySourceOptions {
  /** Coalesce changes arriving within this window (default 100 ms, Istio's push debounce). */
  debounceMs?: number;
  mesh?: Partial<MeshSettings>;
}

type Doc = { source: string; object: unknown };

export class DirectorySource implements ConfigSource {
  private snapshot: MeshSnapshot | undefined;
  private readonly listeners = new Set<(e: SnapshotEvent) => void>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly lastGood = new Map<string, unknown>();
  /** Last documents of each file that parsed cleanly. */
  private readonly goodFiles = new Map<string, Doc[]>();
  private closed = false;
  private lastRejected = '[]';

  constructor(
    readonly dir: string,
    private readonly opts: DirectorySourceOptions = {},
  ) {}

  async start(): Promise<SnapshotEvent> {
    const first = this.load();
    this.snapshot = first.snapshot;
    this.lastRejected = JSON.stringify(first.rejected);
    this.watcher = watch(this.dir, { recursive: true }, () => this.schedule());
    this.watcher.on('error', () => this.schedule());
    return first;
  }

  current(): MeshSnapshot | undefined {
    return this.snapshot;
  }

  onSnapshot(listener: (e: SnapshotEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  /**
   * Reloads now (tests and `isthmus up` call it after writing files). Listeners hear of it when
   * the snapshot version or the set of rejected documents changed.
   */
  reload(): SnapshotEvent {
    const e = this.load();
    const rejected = JSON.stringify(e.rejected);
    if (e.snapshot.version === this.snapshot?.version && rejected === this.lastRejected) return e;
    this.snapshot = e.snapshot;
    this.lastRejected = rejected;
    for (const l of this.listeners) l(e);
    return e;
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.closed) this.reload();
    }, this.opts.debounceMs ?? 100);
  }

  private load(): SnapshotEvent {
    const rejected: RejectedDocument[] = [];
    const loaded = loadDocuments([this.dir]);
    // Group by file; a file with a parse error keeps its last clean documents.
    const byFile = new Map<string, Doc[]>();
    for (const d of loaded.docs) {
      const file = d.source.slice(0, d.source.lastIndexOf('#'));
      (byFile.get(file) ?? byFile.set(file, []).get(file)!).push(d);
    }
    const broken = new Set<string>();
    for (const err of loaded.errors) {
      const hash = err.indexOf('#');
      const colon = err.indexOf(': ');
      const file = hash > 0 && hash < colon ? err.slice(0, hash) : err.slice(0, colon);
      broken.add(file);
      rejected.push({ source: file, messages: [err], keptPrevious: this.goodFiles.has(file) });
    }
    const docs: Doc[] = [];
    for (const file of new Set([...byFile.keys(), ...broken])) {
      if (broken.has(file)) docs.push(...(this.goodFiles.get(file) ?? []));
      else {
        const list = byFile.get(file) ?? [];
        this.goodFiles.set(file, list);
        docs.push(...list);
      }
    }
    for (const file of [...this.goodFiles.keys()])
      if (!byFile.has(file) && !broken.has(file)) this.goodFiles.delete(file);
    const accepted = acceptDocuments(docs, this.lastGood, this.opts.mesh?.rootNamespace);
    return {
      snapshot: buildSnapshot(accepted.objects, this.opts.mesh),
      rejected: [...rejected, ...accepted.rejected],
    };
  }
}

/** A fixed set of objects as a ConfigSource (tests, `isthmus proxy-config` on files). */
export class StaticSource implements ConfigSource {
  private readonly event: SnapshotEvent;
  constructor(objects: unknown[] | string, mesh?: Partial<MeshSettings>) {
    const docs: Doc[] = [];
    if (typeof objects === 'string') {
      const r = { docs, errors: [] as string[] };
      parseDocuments(objects, '<inline>', r);
    } else objects.forEach((object, i) => docs.push({ source: `#${i}`, object }));
    const accepted = acceptDocuments(docs, new Map(), mesh?.rootNamespace);
    this.event = { snapshot: buildSnapshot(accepted.objects, mesh), rejected: accepted.rejected };
  }
  async start(): Promise<SnapshotEvent> {
    return this.event;
  }
  current(): MeshSnapshot {
    return this.event.snapshot;
  }
  onSnapshot(): () => void {
    return () => undefined;
  }
  async close(): Promise<void> {}
}
