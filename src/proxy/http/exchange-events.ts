/**
 * Event and timer callbacks of an Exchange as plain module functions: node's emitters call
 * them with the emitter as `this`, timers with the exchange as an argument, so no closure
 * is allocated per request. The exchange is found on the request/response via a symbol.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attempt } from './attempt.js';
import type { Exchange } from './exchange.js';

const kExchange = Symbol('isthmus.exchange');
type WithExchange = { [kExchange]?: Exchange };

export function attachExchange(req: IncomingMessage, res: ServerResponse, ex: Exchange): void {
  (res as WithExchange)[kExchange] = ex;
  (req as WithExchange)[kExchange] = ex;
  res.once('close', onResponseClose);
}

/** True with probability percentage/100 (always at 100). */
export function roll(percentage: number): boolean {
  return percentage >= 100 || Math.random() * 100 < percentage;
}

export function onDelayDone(ex: Exchange): void {
  ex.delayDone();
}
export function onRequestData(this: IncomingMessage, chunk: Buffer): void {
  (this as WithExchange)[kExchange]?.bodyChunk(chunk);
}
export function onRequestEnd(this: IncomingMessage): void {
  (this as WithExchange)[kExchange]?.bodyEnd();
}
export function onRouteTimeout(ex: Exchange): void {
  ex.routeTimedOut();
}
export function onTryTimeout(a: Attempt): void {
  (a.owner as Exchange).tryTimedOut(a);
}
export function onBackoffDone(ex: Exchange): void {
  ex.retryNow();
}
export function onResponseDrain(this: ServerResponse): void {
  (this as WithExchange)[kExchange]?.attempt?.resume?.();
}
function onResponseClose(this: ServerResponse): void {
  const ex = (this as WithExchange)[kExchange];
  if (ex !== undefined && !this.writableFinished) ex.downstreamClosed();
}
