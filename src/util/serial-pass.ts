/**
 * One asynchronous pass at a time, requests coalesced: the controller's writers (ConfigMap
 * publisher, status writer) reconcile "whatever is latest", so a burst of changes needs one
 * pass, and a change arriving during a pass needs exactly one more after it. A failed pass
 * retries after a backoff the pass itself asks for (500 ms doubling to 10 s).
 */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;

export class SerialPass {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private retryMs = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly pass: () => Promise<void>) {}

  /** Runs the pass after `ms` (restarting a pending delay), or once more after the running one. */
  schedule(ms: number): void {
    if (this.closed) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.dirty) {
          this.dirty = false;
          this.schedule(0);
        } else if (this.retryMs) this.schedule(this.retryMs);
        if (!this.timer && !this.running) for (const w of this.idleWaiters.splice(0)) w();
      });
    }, ms);
  }

  /** Called by the pass when it failed: returns the delay before the retry (doubling). */
  backoff(): number {
    this.retryMs = Math.min(Math.max(this.retryMs * 2, FIRST_RETRY_MS), MAX_RETRY_MS);
    return this.retryMs;
  }

  /** Called by the pass when nothing needs retrying. */
  succeeded(): void {
    this.retryMs = 0;
  }

  /** Resolves when no pass is pending or running. */
  idle(): Promise<void> {
    if (!this.timer && !this.running) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
