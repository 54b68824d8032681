/**
 * Resetting HTTP/2 streams for real. node's `stream.close(code)` first ends the writable side
 * (END_STREAM) and only then sends RST_STREAM, so a peer sees a truncated body as complete;
 * `stream.destroy(err)` sends RST_STREAM alone: INTERNAL_ERROR for an ordinary error, CANCEL
 * for node's AbortError (what a request's AbortSignal uses). Both errors are shared
 * instances: no allocation per reset.
 */
import type { Http2Stream } from 'node:http2';
import { addAbortSignal, Readable } from 'node:stream';

/** node's internal AbortError, obtained through a public API that raises it synchronously. */
function nodeAbortError(): Error | null {
  const r = new Readable({ read() {} });
  r.on('error', () => {});
  addAbortSignal(AbortSignal.abort(), r);
  const e = (r as Readable & { errored?: unknown }).errored;
  return e instanceof Error && e.name === 'AbortError' ? e : null;
}

const CANCEL = nodeAbortError();
const INTERNAL = new Error('HTTP/2 stream reset by the proxy');

/** RST_STREAM(CANCEL) (falls back to close(CANCEL) if node's AbortError is unavailable). */
export function cancelStream(stream: Http2Stream): void {
  if (stream.destroyed) return;
  if (CANCEL !== null) stream.destroy(CANCEL);
  else stream.close(8);
}

/** RST_STREAM(INTERNAL_ERROR): the response cannot be completed. */
export function resetStream(stream: Http2Stream): void {
  if (!stream.destroyed) stream.destroy(INTERNAL);
}
