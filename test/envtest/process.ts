// Child-process plumbing for envtest: spawn with output to a log file, stop gracefully, and a
// process-wide registry so every child is SIGKILLed synchronously when the test process exits,
// however it exits (normal end, mocha --exit, uncaught error, SIGINT/SIGTERM/SIGHUP).
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';

// Registry shared through globalThis: mocha may load this file both through require() (for
// --require'd root hooks) and import() (spec files), i.e. as two module instances.
interface Registry {
  children: Set<ChildProcess>;
  tempDirs: Set<string>;
  handlersInstalled: boolean;
}
const REGISTRY_KEY = Symbol.for('isthmus.envtest.processes');
const globals = globalThis as unknown as Record<symbol, Registry | undefined>;
globals[REGISTRY_KEY] ??= { children: new Set(), tempDirs: new Set(), handlersInstalled: false };
const registry: Registry = globals[REGISTRY_KEY];

/** SIGKILLs every child still running and removes registered temp dirs. Synchronous, for 'exit' handlers. */
export function killAllChildrenSync(): void {
  for (const child of registry.children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  registry.children.clear();
  for (const dir of registry.tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
  registry.tempDirs.clear();
}

/** Registers a directory to delete when the process exits (unless unregistered first). */
export function removeOnExit(dir: string, remove = true): void {
  if (remove) registry.tempDirs.add(dir);
  else registry.tempDirs.delete(dir);
}

function installExitHandlers(): void {
  if (registry.handlersInstalled) return;
  registry.handlersInstalled = true;
  process.on('exit', killAllChildrenSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllChildrenSync();
      process.removeListener(signal, onSignal);
      // If nobody else handles the signal, keep its default meaning: terminate.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// setpriv --pdeathsig makes the kernel kill the child if this process dies without running any
// handler (SIGKILL, OOM). It execs the real binary, so the pid stays the same.
const SETPRIV = '/usr/bin/setpriv';
const useSetpriv = existsSync(SETPRIV);

export interface StopOptions {
  signal?: NodeJS.Signals;
  /** Default 10s. */
  graceMs?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
  /** Sends `signal` (default SIGTERM), then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(opts?: StopOptions): Promise<void>;
}

export function spawnLogged(name: string, command: string, args: string[], logFile: string): ManagedProcess {
  installExitHandlers();
  const fd = openSync(logFile, 'a');
  const [cmd, argv] = useSetpriv
    ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]]
    : [command, args];
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  registry.children.add(child);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      registry.children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      running = false;
      registry.children.delete(child);
      resolve(`spawn error: ${err.message}`);
    });
  });
  return {
    name,
    pid: child.pid ?? -1,
    logFile,
    exited,
    isRunning: () => running,
    async stop({ signal = 'SIGTERM', graceMs = 10_000 } = {}) {
      if (!running) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function tailFile(file: string, lines = 50): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(cannot read ${file}: ${(err as Error).message})`;
  }
}

/** `count` distinct TCP ports on 127.0.0.1 that were free a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  // Hold every listener until all are bound, so the kernel cannot hand out a port twice.
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
