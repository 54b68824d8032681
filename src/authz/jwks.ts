/**
 * JSON Web Key Sets for RequestAuthentication: inline (`jwks`) or fetched (`jwksUri`).
 *
 * A remote set is fetched with a timeout, cached, refreshed on a timer (one per URI, unref'd:
 * never per request), and refetched when a token names a `kid` the cached set lacks (at most
 * once per `cooldownMs`). When a fetch fails the last good set stays in use (stale while
 * error); only a set that was never fetched makes verification fail ("Jwks remote fetch is
 * failed", Envoy's wording). One RemoteJwks per URI is shared by every rule naming it.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createLocalJWKSet, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';

export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export interface JwksFetchOptions {
  /** Extra CA certificates (PEM) trusted for https jwksUri (tests, private issuers). */
  ca?: string | string[];
  /** Largest accepted body; default 1 MiB. */
  maxBytes?: number;
}

export class JwksFetchError extends Error {
  readonly code = 'JWKS_FETCH_FAILED';
}

/** GET `uri` as text within `timeoutMs` (no retries; callers keep their stale copy). */
export function fetchText(uri: string, timeoutMs: number, opts: JwksFetchOptions = {}): Promise<string> {
  const url = new URL(uri);
  const max = opts.maxBytes ?? 1 << 20;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json' },
        timeout: timeoutMs,
        ...(url.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}),
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new JwksFetchError(`GET ${uri}: HTTP ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) req.destroy(new JwksFetchError(`GET ${uri}: body larger than ${max} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new JwksFetchError(`GET ${uri}: timed out after ${timeoutMs} ms`)));
    req.on('error', (err) =>
      reject(err instanceof JwksFetchError ? err : new JwksFetchError(`GET ${uri}: ${err.message}`)),
    );
    req.end();
  });
}

/** Parses a JWKS document (a key set, or one bare JWK) into a jose resolver. Throws when unusable. */
export function parseJwks(text: string): KeyResolver {
  const doc = JSON.parse(text) as unknown;
  if (doc === null || typeof doc !== 'object') throw new Error('JWKS must be a JSON object');
  const set = (Array.isArray((doc as JSONWebKeySet).keys) ? doc : { keys: [doc] }) as JSONWebKeySet;
  if (set.keys.length === 0) throw new Error('JWKS has no keys');
  return createLocalJWKSet(set);
}

/** Where a rule's keys come from. */
export interface KeySource {
  /** Resolves the key for a token header; throws jose errors (no matching key...) or JwksFetchError. */
  resolve(header: JWSHeaderParameters): Promise<unknown>;
  close(): void;
}

export class InlineJwks implements KeySource {
  private readonly keys: KeyResolver;
  constructor(text: string) {
    this.keys = parseJwks(text);
  }
  resolve(header: JWSHeaderParameters): Promise<unknown> {
    return this.keys(header);
  }
  close(): void {}
}

export interface RemoteJwksOptions extends JwksFetchOptions {
  timeoutMs?: number;
  /** Periodic refresh; default 20 min (Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL). 0 = none. */
  refreshMs?: number;
  /** Minimum time between refetches triggered by an unknown `kid`; default 30 s. */
  cooldownMs?: number;
  /** Injected fetcher (tests); default `fetchText`. */
  fetch?: (uri: string, timeoutMs: number, opts: JwksFetchOptions) => Promise<string>;
  /** Monotonic clock in ms; default performance.now. */
  now?: () => number;
}

export class RemoteJwks implements KeySource {
  readonly uri: string;
  private keys: KeyResolver | null = null;
  private inflight: Promise<void> | null = null;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  /** Last fetch error (cleared by a successful fetch); for admin/debug output. */
  lastError: Error | null = null;
  /** Successful fetches so far (tests and metrics). */
  fetches = 0;
  private readonly opts: Required<Pick<RemoteJwksOptions, 'timeoutMs' | 'cooldownMs'>> & RemoteJwksOptions;

  constructor(uri: string, opts: RemoteJwksOptions = {}) {
    this.uri = uri;
    this.opts = { ...opts, timeoutMs: opts.timeoutMs ?? 5000, cooldownMs: opts.cooldownMs ?? 30_000 };
    const every = opts.refreshMs ?? 20 * 60_000;
    if (every > 0) {
      this.timer = setInterval(refreshTick, every, this);
      this.timer.unref();
    }
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : performance.now();
  }

  /** Fetches now (deduplicated with a fetch already under way). Never rejects. */
  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    this.lastAttempt = this.now();
    const fetch = this.opts.fetch ?? fetchText;
    this.inflight = fetch(this.uri, this.opts.timeoutMs, this.opts)
      .then((text) => {
        this.keys = parseJwks(text);
        this.lastError = null;
        this.fetches++;
      })
      .catch((err: unknown) => {
        this.lastError = err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  async resolve(header: JWSHeaderParameters): Promise<unknown> {
    if (this.keys === null) await this.refresh();
    const keys = this.keys;
    if (keys === null)
      throw new JwksFetchError(`Jwks remote fetch is failed: ${this.lastError?.message ?? 'unknown error'}`);
    try {
      return await keys(header);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ERR_JWKS_NO_MATCHING_KEY' || this.now() - this.lastAttempt < this.opts.cooldownMs)
        throw err;
      await this.refresh(); // key rotation: the issuer may have published a new key
      return (this.keys ?? keys)(header);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function refreshTick(j: RemoteJwks): void {
  void j.refresh();
}
