/** Runs the real `isthmus controller` as a child process against the envtest control plane. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/util/paths.js';
import type { ControlPlane } from '../envtest/index.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface ControllerProcess {
  port: number;
  logFile: string;
  /** The last lines the controller wrote (for failure messages). */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Starts the controller serving webhooks on 127.0.0.1:<port>, registered by URL. */
export async function startController(
  cp: ControlPlane,
  extraArgs: string[] = [],
  port?: number,
): Promise<ControllerProcess> {
  const p = port ?? (await freePort());
  const logFile = join(cp.dir, `controller-${p}-${Date.now()}.log`);
  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'bin', 'isthmus.js'),
      'controller',
      '--kubeconfig',
      cp.kubeconfigPath,
      '--namespace',
      'istio-system',
      '--webhook-port',
      String(p),
      '--webhook-host',
      '127.0.0.1',
      '--webhook-url',
      `https://127.0.0.1:${p}`,
      '--ca-port',
      String(await freePort()),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  return {
    port: p,
    logFile,
    logTail: (lines = 30) => readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n'),
    async stop() {
      process.off('exit', kill);
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(kill, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
  );
}
