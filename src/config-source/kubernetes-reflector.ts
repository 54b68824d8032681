/**
 * A reflector (client-go's name): list, then watch from the list's resourceVersion, keeping a
 * local store. What @kubernetes/client-node's informer lacks, and this adds:
 *  - a watch that ends (server timeout, dropped connection, apiserver restart) resumes from the
 *    last resourceVersion seen, so events that happened meanwhile are delivered, not lost;
 *  - 410 Gone (resourceVersion compacted or older than the restarted apiserver's cache), as an
 *    HTTP status or an ERROR event, triggers a relist that is diffed against the store;
 *  - failures back off exponentially with jitter (capped) instead of hammering or giving up;
 *  - a periodic full resync relist (default 5 min) repairs anything missed anyway;
 *  - a client-side idle timeout catches half-open connections.
 * `onChange` is called (synchronously, possibly often) after each change to the store.
 */
import {
  KubeApiError,
  type KubeList,
  type KubeObject,
  type KubeRest,
  type WatchEvent,
} from './kubernetes-rest.js';

export interface ReflectorLogger {
  info(msg: string, meta?: Record<string, unknown>): unknown;
  warn(msg: string, meta?: Record<string, unknown>): unknown;
  debug(msg: string, meta?: Record<string, unknown>): unknown;
}

export interface ReflectorOptions {
  rest: KubeRest;
  /** Collection path, e.g. `/api/v1/pods` or `/api/v1/namespaces/shop/configmaps`. */
  path: string;
  /** Filled into list items (lists omit them). */
  apiVersion: string;
  kind: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Full relist interval (default 300 s; 0 = never). */
  resyncMs?: number;
  /** Server-side watch timeout, randomized up to 2x (default 240 s). */
  watchTimeoutSec?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Trims objects before they are stored (memory). Default drops managedFields. */
  transform?: (o: KubeObject) => KubeObject;
  onChange?: (r: Reflector) => void;
  log?: ReflectorLogger;
}

export interface ReflectorStats {
  lists: number;
  watches: number;
  gone: number;
  errors: number;
  lastError?: string;
}

const noop: ReflectorLogger = { info: () => 0, warn: () => 0, debug: () => 0 };

export function stripManagedFields(o: KubeObject): KubeObject {
  if (o.metadata && 'managedFields' in o.metadata) {
    const { managedFields: _drop, ...meta } = o.metadata;
    return { ...o, metadata: meta };
  }
  return o;
}

const keyOf = (o: KubeObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class Reflector {
  readonly store = new Map<string, KubeObject>();
  readonly stats: ReflectorStats = { lists: 0, watches: 0, gone: 0, errors: 0 };
  resourceVersion = '';
  private synced = false;
  private stopped = false;
  private needList = true;
  private abort: AbortController | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private sleepTimer: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private readonly log: ReflectorLogger;
  private readonly firstSync: Promise<void>;
  private resolveFirstSync!: () => void;
  private loop: Promise<void> | undefined;

  constructor(readonly opts: ReflectorOptions) {
    this.log = opts.log ?? noop;
    this.firstSync = new Promise((r) => {
      this.resolveFirstSync = r;
    });
  }

  /** Starts the list/watch loop; resolves after the first successful list. */
  start(): Promise<void> {
    this.loop ??= this.run();
    const resync = this.opts.resyncMs ?? 300_000;
    if (resync > 0) {
      this.resyncTimer = setInterval(() => this.resync(), resync);
      this.resyncTimer.unref();
    }
    return this.firstSync;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  list(): KubeObject[] {
    return [...this.store.values()];
  }

  /** Forces a relist now (the periodic resync calls this). */
  resync(): void {
    this.needList = true;
    this.abort?.abort();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.abort?.abort();
    this.wake();
    await this.loop;
  }

  private wake(): void {
    if (this.sleepTimer) {
      clearTimeout(this.sleepTimer.timer);
      this.sleepTimer.resolve();
      this.sleepTimer = undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleepTimer = { timer: setTimeout(resolve, ms), resolve };
    });
  }

  private query(): Record<string, string | undefined> {
    return { fieldSelector: this.opts.fieldSelector, labelSelector: this.opts.labelSelector };
  }

  private prepare(o: KubeObject): KubeObject {
    const full = { ...o, apiVersion: o.apiVersion ?? this.opts.apiVersion, kind: o.kind ?? this.opts.kind };
    return (this.opts.transform ?? stripManagedFields)(full);
  }

  private changed(): void {
    try {
      this.opts.onChange?.(this);
    } catch (err) {
      this.log.warn('reflector change handler failed', { path: this.opts.path, error: String(err) });
    }
  }

  private async relist(): Promise<void> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.opts.rest.get<KubeList>(this.opts.path, {
        ...this.query(),
        limit: 500,
        ...(cont ? { continue: cont } : {}),
      });
      items.push(...page.items);
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    this.stats.lists++;
    let dirty = false;
    const seen = new Set<string>();
    for (const raw of items) {
      const o = this.prepare(raw);
      const key = keyOf(o);
      seen.add(key);
      const prev = this.store.get(key);
      if (!prev || prev.metadata?.resourceVersion !== o.metadata?.resourceVersion) dirty = true;
      this.store.set(key, o);
    }
    for (const key of [...this.store.keys()])
      if (!seen.has(key)) {
        this.store.delete(key);
        dirty = true;
      }
    this.resourceVersion = rv;
    this.needList = false;
    const first = !this.synced;
    this.synced = true;
    if (first) this.resolveFirstSync();
    if (dirty || first) this.changed();
  }

  private apply(e: WatchEvent): void {
    if (e.type === 'ERROR') {
      const status = e.object as { code?: number; message?: string; reason?: string };
      throw new KubeApiError(status.code ?? 500, status.message ?? 'watch error', status, status.reason);
    }
    const rv = e.object?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (e.type === 'BOOKMARK') return;
    const o = this.prepare(e.object);
    if (e.type === 'DELETED') this.store.delete(keyOf(o));
    else this.store.set(keyOf(o), o);
    this.changed();
  }

  private async run(): Promise<void> {
    const initial = this.opts.backoffInitialMs ?? 200;
    const max = this.opts.backoffMaxMs ?? 5_000;
    let delay = initial;
    const timeout = this.opts.watchTimeoutSec ?? 240;
    while (!this.stopped) {
      try {
        if (this.needList) await this.relist();
        if (this.stopped) break;
        this.abort = new AbortController();
        const seconds = Math.round(timeout * (1 + Math.random()));
        const started = Date.now();
        this.stats.watches++;
        await this.opts.rest.watch(
          this.opts.path,
          {
            ...this.query(),
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: seconds,
          },
          (e) => this.apply(e),
          { signal: this.abort.signal, idleMs: (seconds + 30) * 1000 },
        );
        // A clean end (server timeout): resume at once. A watch that ends immediately is
        // treated as a failure so a misbehaving server cannot make us spin.
        if (Date.now() - started > 1000) delay = initial;
        else {
          await this.sleep(delay);
          delay = Math.min(delay * 2, max);
        }
      } catch (err) {
        if (this.stopped) break;
        if (this.abort?.signal.aborted && this.needList) continue; // resync requested
        const code = err instanceof KubeApiError ? err.code : 0;
        if (code === 410) {
          this.stats.gone++;
          this.needList = true;
          this.log.info('watch expired (410 Gone); relisting', { path: this.opts.path });
          continue;
        }
        this.stats.errors++;
        this.stats.lastError = err instanceof Error ? err.message : String(err);
        const wait = Math.round(delay * (0.5 + Math.random()));
        this.log.debug('list/watch failed; backing off', {
          path: this.opts.path,
          error: this.stats.lastError,
          retryMs: wait,
        });
        await this.sleep(wait);
        delay = Math.min(delay * 2, max);
      } finally {
        this.abort = undefined;
      }
    }
  }
}
