// Load from inside a pod (node's fetch in the pod's app container, so a meshed pod's requests go
// through its sidecar), and Istio metrics scraped from a sidecar's 15090.
import type { Cluster } from './cluster.js';

type Kubectl = Pick<Cluster, 'kubectlOk'>;

export interface LoadOptions {
  url: string;
  count: number;
  /** Requests in flight at once (default 1); ignored when `rps` is set. */
  concurrency?: number;
  /** Open loop: start one request every 1000/rps ms whatever the answers (bounded by `count`). */
  rps?: number;
  headers?: Record<string, string>;
  /** Per request (default 10 s): past it the request counts as `error`. */
  timeoutMs?: number;
  /** Count the answers whose body contains this text (`matched`). */
  match?: string;
}

export interface LoadStats {
  total: number;
  /** HTTP status -> count; `error` = no response (connection refused/reset, timeout). */
  statuses: Record<string, number>;
  /** First body seen per status (truncated), and the first few errors. */
  bodies: Record<string, string>;
  errors: string[];
  /** Answers whose body contains `match`. */
  matched: number;
  /** Fastest and slowest answered request, client side, in ms (null: none answered). */
  minMs: number | null;
  maxMs: number | null;
  /** Wall time of the whole run, ms. */
  elapsedMs: number;
}

const SCRIPT = `
const o = JSON.parse(process.argv[1]);
const out = { total: 0, statuses: {}, bodies: {}, errors: [], matched: 0, minMs: null, maxMs: null, elapsedMs: 0 };
const count = (k) => { out.statuses[k] = (out.statuses[k] || 0) + 1; };
async function one() {
  out.total++;
  const t0 = performance.now();
  try {
    const res = await fetch(o.url, { headers: o.headers || {}, signal: AbortSignal.timeout(o.timeoutMs || 10000) });
    const text = await res.text();
    const ms = performance.now() - t0;
    count(res.status);
    if (o.match && text.includes(o.match)) out.matched++;
    if (!(res.status in out.bodies)) out.bodies[res.status] = text.slice(0, 200);
    if (out.minMs === null || ms < out.minMs) out.minMs = ms;
    if (out.maxMs === null || ms > out.maxMs) out.maxMs = ms;
  } catch (err) {
    count('error');
    if (out.errors.length < 5) out.errors.push(String(err && err.cause ? err.cause : err));
  }
}
(async () => {
  const start = performance.now();
  if (o.rps) {
    const pending = [];
    for (let i = 0; i < o.count; i++) {
      const wait = start + (i * 1000) / o.rps - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(one());
    }
    await Promise.all(pending);
  } else {
    let next = 0;
    const worker = async () => { while (next < o.count) { next++; await one(); } };
    await Promise.all(Array.from({ length: Math.max(1, o.concurrency || 1) }, worker));
  }
  out.elapsedMs = performance.now() - start;
  process.stdout.write(JSON.stringify(out));
})();`;

/** Runs the load from container `container` of `pod` and returns what the client saw. */
export async function loadFrom(
  cluster: Kubectl,
  namespace: string,
  pod: string,
  container: string,
  opts: LoadOptions,
): Promise<LoadStats> {
  const stdout = await cluster.kubectlOk(
    ['-n', namespace, 'exec', pod, '-c', container, '--', 'node', '-e', SCRIPT, JSON.stringify(opts)],
    { timeoutMs: 180_000 },
  );
  return JSON.parse(stdout) as LoadStats;
}

/** Count of `status` in `stats` (0 when absent). */
export const n = (stats: LoadStats, status: number | 'error'): number => stats.statuses[status] ?? 0;

/** The Prometheus text of the sidecar at `ip` (its 15090), fetched from `fromPod` (no sidecar in the way). */
export async function scrapeSidecar(
  cluster: Kubectl,
  namespace: string,
  fromPod: string,
  ip: string,
): Promise<string> {
  return cluster.kubectlOk([
    '-n',
    namespace,
    'exec',
    fromPod,
    '--',
    'node',
    '-e',
    `fetch('http://${ip}:15090/stats/prometheus').then((r) => r.text()).then((t) => process.stdout.write(t))`,
  ]);
}

/** Sum of `metric` series whose label text contains every one of `labels` (e.g. `response_code="503"`). */
export function sumSeries(text: string, metric: string, ...labels: string[]): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) || !labels.every((l) => line.includes(l))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The `metric` series lines matching `labels` (for failure messages). */
export function seriesLines(text: string, metric: string, ...labels: string[]): string {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${metric}{`) && labels.every((x) => l.includes(x)))
    .join('\n');
}
