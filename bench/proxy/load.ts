/**
 * Load generators for the proxy benchmark, both closed-loop with a fixed number of
 * keep-alive connections and bounded in time: `wrk` (preferred, C) or a Node generator
 * (undici Client per connection, raw dispatch) when wrk is absent.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import { Client } from 'undici';

export interface LoadResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
}

const MAX_REQUESTS = 5_000_000;

export async function loadNode(port: number, connections: number, seconds: number): Promise<LoadResult> {
  const clients = Array.from({ length: connections }, () => new Client(`http://127.0.0.1:${port}`));
  const latencies = new Float64Array(MAX_REQUESTS);
  let n = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          const issue = () => {
            if (performance.now() >= deadline || n >= MAX_REQUESTS) return resolve();
            const t0 = performance.now();
            client.dispatch(
              { path: '/', method: 'GET', headers: ['host', 'upstream:9080'] },
              {
                onConnect() {},
                onHeaders(status: number) {
                  if (status !== 200) errors++;
                  return true;
                },
                onData() {
                  return true;
                },
                onComplete() {
                  if (n < MAX_REQUESTS) latencies[n++] = performance.now() - t0;
                  issue();
                },
                onError() {
                  errors++;
                  setTimeout(issue, 1);
                },
              },
            );
          };
          issue();
        }),
    ),
  );
  const secs = (performance.now() - start) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  const sorted = latencies.subarray(0, n).sort();
  const q = (p: number) => (n ? sorted[Math.min(n - 1, Math.floor(p * n))]! : 0);
  return { rps: n / secs, p50: q(0.5), p90: q(0.9), p99: q(0.99), errors };
}

/** Runs wrk with latency percentiles; `cpu` pins wrk with taskset. */
export function loadWrk(
  port: number,
  connections: number,
  seconds: number,
  cpu?: number,
): Promise<LoadResult> {
  const wrkArgs = [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--latency',
    '-H',
    'Host: upstream:9080',
    `http://127.0.0.1:${port}/`,
  ];
  const [cmd, argv] =
    cpu === undefined ? ['wrk', wrkArgs] : ['taskset', ['-c', String(cpu), 'wrk', ...wrkArgs]];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: (seconds + 30) * 1000 }, (err, stdout) => {
      if (err) return reject(err);
      const ms = (label: string) => {
        const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(stdout);
        if (!m) return Number.NaN;
        const v = Number(m[1]);
        return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
      };
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN);
      const errs = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
      resolve({ rps, p50: ms('50'), p90: ms('90'), p99: ms('99'), errors: errs ? Number(errs[1]) : 0 });
    });
  });
}

/**
 * Open-loop load at a fixed rate (wrk2-like): request i is due at start + i / rate and goes
 * out on the first idle connection; latency is measured from the due time, so a stalled proxy
 * shows up as queueing instead of silently lowering the rate (no coordinated omission).
 */
export async function loadRate(
  port: number,
  connections: number,
  rate: number,
  seconds: number,
): Promise<LoadResult> {
  const total = Math.min(MAX_REQUESTS, Math.round(rate * seconds));
  const clients = Array.from({ length: connections }, () => new Client(`http://127.0.0.1:${port}`));
  const idle = clients.slice();
  const latencies = new Float64Array(total);
  let sent = 0;
  let done = 0;
  let errors = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const send = (client: Client, due: number) => {
      client.dispatch(
        { path: '/', method: 'GET', headers: ['host', 'upstream:9080'] },
        {
          onConnect() {},
          onHeaders(status: number) {
            if (status !== 200) errors++;
            return true;
          },
          onData() {
            return true;
          },
          onComplete() {
            finish(client, due);
          },
          onError() {
            errors++;
            finish(client, due);
          },
        },
      );
    };
    const finish = (client: Client, due: number) => {
      latencies[done++] = performance.now() - due;
      if (done === total) return resolve();
      idle.push(client);
      pump();
    };
    const pump = () => {
      const now = performance.now();
      while (sent < total && idle.length > 0) {
        const due = start + (sent * 1000) / rate;
        if (due > now) break;
        sent++;
        send(idle.pop()!, due);
      }
    };
    // A 1 ms tick releases the requests that fell due; completions release queued ones.
    const timer = setInterval(() => {
      pump();
      if (sent === total) clearInterval(timer);
    }, 1);
  });
  const secs = (performance.now() - start) / 1000;
  await Promise.all(clients.map((c) => c.close()));
  const sorted = latencies.sort();
  const q = (p: number) => (done ? sorted[Math.min(done - 1, Math.floor(p * done))]! : 0);
  return { rps: done / secs, p50: q(0.5), p90: q(0.9), p99: q(0.99), errors };
}

/**
 * TCP ping-pong (closed loop): each connection writes `size` bytes and waits for them to come
 * back before the next round trip. rps = round trips per second.
 */
export async function loadEcho(
  port: number,
  connections: number,
  seconds: number,
  size = 1024,
): Promise<LoadResult> {
  const payload = Buffer.alloc(size, 'p');
  const latencies = new Float64Array(MAX_REQUESTS);
  let n = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect(port, '127.0.0.1');
          socket.setNoDelay(true);
          let got = 0;
          let t0 = 0;
          const send = () => {
            if (performance.now() >= deadline || n >= MAX_REQUESTS) {
              socket.destroy();
              return resolve();
            }
            got = 0;
            t0 = performance.now();
            socket.write(payload);
          };
          socket.on('connect', send);
          socket.on('data', (d: Buffer) => {
            got += d.length;
            if (got < size) return;
            latencies[n++] = performance.now() - t0;
            send();
          });
          socket.on('error', () => {
            errors++;
            resolve();
          });
        }),
    ),
  );
  const secs = (performance.now() - start) / 1000;
  const sorted = latencies.subarray(0, n).sort();
  const q = (p: number) => (n ? sorted[Math.min(n - 1, Math.floor(p * n))]! : 0);
  return { rps: n / secs, p50: q(0.5), p90: q(0.9), p99: q(0.99), errors };
}
