/**
 * Zipkin v2 exporter: `POST <address>/api/v2/spans` with a JSON array of spans, batched off
 * the request path. Requests only push finished span objects onto a bounded queue (full =
 * the span is dropped and counted); a timer (unref'd) or a full batch triggers a flush, which
 * serializes and sends in the background. Collector errors are counted and logged at debug,
 * never thrown into requests; at most one POST is in flight.
 */
import http from 'node:http';
import https from 'node:https';

/** A finished span that can describe itself as Zipkin v2 JSON (done at flush time). */
export interface ZipkinSpanSource {
  toZipkin(): unknown;
}

export interface ZipkinOptions {
  /** `host:port` (Istio's `tracing.zipkin.address`) or an http(s) URL; the path defaults to /api/v2/spans. */
  address: string;
  /** Flush at least this often (Envoy's Zipkin reporter: 5 s; default here 1 s). */
  flushIntervalMs?: number;
  /** Send as soon as this many spans are queued (Envoy min_flush_spans: 5; default 100). */
  maxBatch?: number;
  /** Spans held at most; more are dropped and counted (default 10000). */
  maxQueue?: number;
  /** Per-POST timeout (default 5 s). */
  timeoutMs?: number;
  debug?: (msg: string) => void;
}

export interface ZipkinStats {
  sent: number;
  dropped: number;
  failed: number;
  posts: number;
}

/** `zipkin.istio-system:9411` -> `http://zipkin.istio-system:9411/api/v2/spans`; URLs kept. */
export function collectorUrl(address: string): URL {
  const withScheme = /^https?:\/\//i.test(address) ? address : `http://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`zipkin address "${address}" is not host:port or an http(s) URL`);
  }
  if (!url.port && !/^https?:\/\//i.test(address))
    throw new Error(
      `zipkin address "${address}" has no port (expected host:port, e.g. zipkin.istio-system:9411)`,
    );
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/api/v2/spans';
  return url;
}

export class ZipkinExporter {
  readonly url: URL;
  readonly stats: ZipkinStats = { sent: 0, dropped: 0, failed: 0, posts: 0 };
  private queue: ZipkinSpanSource[] = [];
  private readonly maxBatch: number;
  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly timer: NodeJS.Timeout;
  private inFlight: Promise<void> | null = null;
  private readonly debug: ((msg: string) => void) | null;
  private closed = false;
  private flushSoon = false;

  constructor(opts: ZipkinOptions) {
    this.url = collectorUrl(opts.address);
    this.maxBatch = opts.maxBatch ?? 100;
    this.maxQueue = opts.maxQueue ?? 10_000;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.debug = opts.debug ?? null;
    this.timer = setInterval(onTick, opts.flushIntervalMs ?? 1000, this);
    this.timer.unref();
  }

  /** Queues a finished span; never blocks or throws. */
  push(span: ZipkinSpanSource): void {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.stats.dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.maxBatch && !this.flushSoon) {
      this.flushSoon = true;
      setImmediate(onTick, this);
    }
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Sends what is queued (one POST at a time); resolves when that POST is done. */
  flush(): Promise<void> {
    this.flushSoon = false;
    if (this.inFlight !== null) return this.inFlight;
    if (this.queue.length === 0) return Promise.resolve();
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.maxBatch);
    let body: string;
    try {
      body = JSON.stringify(batch.map((s) => s.toZipkin()));
    } catch (err) {
      this.stats.failed += batch.length;
      this.debug?.(`zipkin: cannot serialize spans: ${String(err)}`);
      return Promise.resolve();
    }
    const p = this.post(body, batch.length).finally(() => {
      this.inFlight = null;
      if (this.queue.length >= this.maxBatch) setImmediate(onTick, this);
    });
    this.inFlight = p;
    return p;
  }

  private post(body: string, count: number): Promise<void> {
    this.stats.posts++;
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise<void>((resolve) => {
      const req = mod.request(
        this.url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: this.timeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
            if (ok) this.stats.sent += count;
            else {
              this.stats.failed += count;
              this.debug?.(`zipkin: ${this.url.href} answered ${res.statusCode}`);
            }
            resolve();
          });
          res.on('error', () => resolve());
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        this.stats.failed += count;
        this.debug?.(`zipkin: POST ${this.url.href} failed: ${err.message}`);
        resolve();
      });
      req.end(body);
    });
  }

  /**
   * Stops the timer and sends one last batch (bounded by the POST timeout); spans beyond one
   * batch are dropped and counted, so a slow collector cannot hold up shutdown.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.inFlight !== null) await this.inFlight;
    if (this.queue.length > this.maxBatch) {
      this.stats.dropped += this.queue.length - this.maxBatch;
      this.queue.length = this.maxBatch;
    }
    await this.flush();
  }
}

function onTick(e: ZipkinExporter): void {
  void e.flush();
}
