/**
 * `isthmus wait`: blocks until a URL answers 200 (pilot-agent wait). The injected postStart
 * hook runs it so app containers start only once the proxy is ready
 * (holdApplicationUntilProxyStarts):
 *   isthmus wait --url=http://localhost:15021/healthz/ready [--timeout-seconds 60] [--period-millis 500]
 * Exit 0 once ready, 1 on timeout.
 */
import http from 'node:http';
import https from 'node:https';
import type { Command } from 'commander';

interface WaitCliOptions {
  url: string;
  timeoutSeconds: string;
  periodMillis: string;
  requestTimeoutMillis: string;
}

/** One GET; resolves with the status code, or 0 when the request failed. */
function probe(url: URL, timeoutMs: number): Promise<number> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const req = lib.get(url, { timeout: timeoutMs, agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

/** Polls `url` every `periodMs` until it answers 200 or `timeoutMs` passed. */
export async function waitForUrl(
  url: string,
  timeoutMs: number,
  periodMs: number,
  requestTimeoutMs = 1000,
): Promise<{ ok: boolean; attempts: number; lastStatus: number }> {
  const target = new URL(url);
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastStatus = 0;
  for (;;) {
    attempts++;
    lastStatus = await probe(target, Math.max(1, Math.min(requestTimeoutMs, deadline - Date.now())));
    if (lastStatus === 200) return { ok: true, attempts, lastStatus };
    const left = deadline - Date.now();
    if (left <= 0) return { ok: false, attempts, lastStatus };
    await new Promise((r) => setTimeout(r, Math.min(periodMs, left)));
  }
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number, got "${value}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command('wait')
    .description('Wait until a URL answers 200 (default: the proxy readiness on 15021)')
    .option('--url <url>', 'URL to poll', 'http://localhost:15021/healthz/ready')
    .option('--timeout-seconds, --timeoutSeconds <n>', 'give up after this long (exit 1)', '60')
    .option('--period-millis, --periodMillis <n>', 'time between attempts', '500')
    .option('--request-timeout-millis, --requestTimeoutMillis <n>', 'timeout of one attempt', '1000')
    .action(async (o: WaitCliOptions) => {
      const timeoutMs = positive(o.timeoutSeconds, '--timeout-seconds') * 1000;
      const periodMs = positive(o.periodMillis, '--period-millis');
      const r = await waitForUrl(
        o.url,
        timeoutMs,
        periodMs,
        positive(o.requestTimeoutMillis, '--request-timeout-millis'),
      );
      if (r.ok) {
        process.stdout.write(
          `${o.url} is ready (after ${r.attempts} attempt${r.attempts === 1 ? '' : 's'})\n`,
        );
        return;
      }
      process.stderr.write(
        `isthmus wait: ${o.url} not ready after ${o.timeoutSeconds} s (last: ${r.lastStatus || 'no answer'})\n`,
      );
      process.exitCode = 1;
    });
}
