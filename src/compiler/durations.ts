/** Istio durations -> integer milliseconds, once, at compile time (the proxy never parses them). */
import { parseDuration } from '../validation/primitives.js';

export function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  return ms === undefined ? undefined : Math.round(ms);
}
