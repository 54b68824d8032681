/**
 * One try of an upstream request: the undici dispatch handler. A fresh Attempt per try lets
 * late callbacks of an abandoned try (aborted on timeout) be told apart from the live one.
 * It forwards to its Exchange, which owns all decisions.
 *
 * Uses undici's raw handler interface (onConnect/onHeaders/...: raw Buffer headers, no
 * parsing into objects), the one its HTTP/1 client speaks natively.
 */
import type { EndpointState } from '../upstream/endpoint.js';

/** Flat response headers/trailers: Buffers from undici, strings from the HTTP/2 pool. */
export type RawHeaders = ReadonlyArray<Buffer | string>;

export interface AttemptOwner {
  attemptHeaders(a: Attempt, status: number, raw: RawHeaders, resume: () => void): boolean;
  attemptData(a: Attempt, chunk: Buffer): boolean;
  attemptComplete(a: Attempt, trailers: RawHeaders | null): void;
  attemptError(a: Attempt, err: Error): void;
}

export class Attempt {
  readonly owner: AttemptOwner;
  readonly endpoint: EndpointState;
  readonly isRetry: boolean;
  abortFn: ((err?: Error) => void) | null = null;
  /** Set when undici handed the request to a connected socket. */
  connected = false;
  /** Set when the proxy gave up on this try; its callbacks are then ignored. */
  cancelled = false;
  cancelReason: Error | null = null;
  /** The response is being drained and dropped because a retry follows. */
  discard = false;
  resume: (() => void) | null = null;
  timedOut = false;
  /** The try's outcome was already handled (completion, error or an early give-up). */
  ended = false;

  constructor(owner: AttemptOwner, endpoint: EndpointState, isRetry: boolean) {
    this.owner = owner;
    this.endpoint = endpoint;
    this.isRetry = isRetry;
  }

  /** Abandons the try; aborts the upstream request now or as soon as it starts. */
  cancel(reason: Error): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.cancelReason = reason;
    if (this.abortFn !== null) this.abortFn(reason);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    this.connected = true;
    if (this.cancelled) abort(this.cancelReason ?? new Error('cancelled'));
  }

  onHeaders(status: number, raw: RawHeaders, resume: () => void): boolean {
    if (this.cancelled) return true;
    return this.owner.attemptHeaders(this, status, raw, resume);
  }

  onData(chunk: Buffer): boolean {
    if (this.cancelled || this.discard) return true;
    return this.owner.attemptData(this, chunk);
  }

  onComplete(trailers?: RawHeaders | null): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.attemptComplete(this, trailers ?? null);
  }

  onError(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.attemptError(this, err);
  }
}

/** Handler for mirrored (shadow) requests: everything is ignored. Shared, stateless. */
export const DISCARD_HANDLER = {
  onConnect(): void {},
  onHeaders(): boolean {
    return true;
  },
  onData(): boolean {
    return true;
  },
  onComplete(): void {},
  onError(): void {},
};
