/** Small helpers shared by benchmark scripts: percentiles and a bounded closed-loop load runner. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

export interface LoadResult {
  count: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function summarize(latencies: number[], errors: number, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    count: latencies.length,
    errors,
    seconds,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
  };
}

/**
 * Runs `concurrency` workers, each calling `once()` back to back, until `total` calls were made
 * or `maxSeconds` passed (both bounds always apply). Latencies in milliseconds.
 */
export async function closedLoop(
  once: () => Promise<boolean>,
  opts: { concurrency: number; total: number; maxSeconds: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  let started = 0;
  let errors = 0;
  const deadline = performance.now() + opts.maxSeconds * 1000;
  const t0 = performance.now();
  const worker = async () => {
    while (started < opts.total && performance.now() < deadline) {
      started++;
      const s = performance.now();
      let ok = false;
      try {
        ok = await once();
      } catch {
        ok = false;
      }
      latencies.push(performance.now() - s);
      if (!ok) errors++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return summarize(latencies, errors, (performance.now() - t0) / 1000);
}

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/**
 * Open-loop load: starts one call every 1/rps seconds regardless of completions (no coordinated
 * omission: latency counts from the scheduled start), `total` calls at most, `maxSeconds` at most.
 */
export async function openLoop(
  once: () => Promise<boolean>,
  opts: { rps: number; total: number; maxSeconds: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const interval = 1000 / opts.rps;
  const t0 = performance.now();
  const deadline = t0 + opts.maxSeconds * 1000;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < opts.total; i++) {
    const scheduled = t0 + i * interval;
    if (scheduled > deadline) break;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      once()
        .catch(() => false)
        .then((ok) => {
          latencies.push(performance.now() - scheduled);
          if (!ok) errors++;
        }),
    );
  }
  await Promise.all(inflight);
  return summarize(latencies, errors, (performance.now() - t0) / 1000);
}
