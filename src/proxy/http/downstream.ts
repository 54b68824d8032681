/**
 * The small surface a downstream request/response exposes to the protocol-independent
 * request path (handler.ts, exchange.ts, local-reply.ts). `http1/stream.ts` (Http1Stream)
 * and `http2/stream.ts` (H2Downstream) both implement it.
 */
import type { Readable } from 'node:stream';
import type { StreamOwner } from '../http1/stream.js';

export type { StreamOwner };

export interface Downstream {
  readonly method: string;
  /** Request target as received (origin-form, or absolute-form on HTTP/1). */
  readonly url: string;
  /** Flat `[name, value, ...]`; HTTP/2 pseudo-headers removed, `host` from `:authority`. */
  readonly rawHeaders: string[];
  /** http1/head.ts BodyMode: None, Length (contentLength valid) or Chunked (unsized). */
  readonly bodyMode: number;
  readonly contentLength: number;
  /** gRPC request (content-type application/grpc*): local replies go out as gRPC statuses. */
  readonly grpc?: boolean;
  /** Arrived over HTTP/2 (picks the upstream protocol of `auto` clusters). */
  readonly h2?: boolean;
  owner: StreamOwner | null;
  bodyBytes: number;
  bodyDone: boolean;
  headersSent: boolean;
  /** The request body as a stream (taken once, before the body arrives). */
  bodyStream(): Readable;
  writeHead(status: number, headers: readonly string[]): void;
  /** false = wait for owner.streamDrain(). */
  write(chunk: Buffer): boolean;
  /** Ends the response; trailers (flat) are sent where the protocol carries them. */
  end(chunk?: Buffer, trailers?: readonly string[] | null): void;
  /** Aborts the response (HTTP/1: closes the connection; HTTP/2: resets the stream). */
  destroy(): void;
}
