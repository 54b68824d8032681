/**
 * Timer callbacks of an Exchange as plain module functions: timers get the exchange (or try)
 * as an argument, so no closure is allocated per request.
 */
import type { Attempt } from './attempt.js';
import type { Exchange } from './exchange.js';

/** True with probability percentage/100 (always at 100). */
export function roll(percentage: number): boolean {
  return percentage >= 100 || Math.random() * 100 < percentage;
}

export function onDelayDone(ex: Exchange): void {
  ex.delayDone();
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
