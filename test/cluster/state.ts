// The one-cluster-per-machine lock and the record of everything the running cluster added to the
// machine (PIDs, paths, iptables rules, sysctls), which scripts/cluster-down.sh reads to tear the
// cluster down: from Cluster.stop(), from an exit/signal handler, or by hand after a crash.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_DIR, STATE_BASE } from './config.js';
import { log } from './exec.js';
import { REPO_ROOT } from './images.js';

export const STATE_FILE = join(RUN_DIR, 'state.env');
export const DOWN_SCRIPT = join(REPO_ROOT, 'scripts', 'cluster-down.sh');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function owner(): number | undefined {
  try {
    const pid = Number(readFileSync(join(RUN_DIR, 'owner.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the machine's cluster lock (the run dir). A lock left by a dead process is torn down
 * first; a live owner (another test run, `npm run cluster:up`) is waited for.
 */
export async function acquireLock(timeoutMs = 30 * 60_000): Promise<void> {
  mkdirSync(STATE_BASE, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      mkdirSync(RUN_DIR);
      writeFileSync(join(RUN_DIR, 'owner.pid'), `${process.pid}\n`);
      writeFileSync(STATE_FILE, `OWNER_PID=${process.pid}\n`);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = owner();
    if (pid === undefined || !alive(pid)) {
      log(`tearing down what a previous run (pid ${pid ?? '?'}) left behind`);
      teardownSync();
      continue;
    }
    if (Date.now() > deadline) throw new Error(`[cluster] ${RUN_DIR} is held by live pid ${pid}`);
    if (!told) log(`another cluster (pid ${pid}) is running on this machine; waiting for it to end`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** Appends KEY=VALUE lines (values shell-quoted) to the state file. */
export function record(values: Record<string, string | number>): void {
  const lines = Object.entries(values).map(([k, v]) => `${k}='${String(v).replace(/'/g, `'\\''`)}'\n`);
  appendFileSync(STATE_FILE, lines.join(''));
}

/** Runs cluster-down.sh synchronously (usable in exit handlers). */
export function teardownSync(): void {
  if (!existsSync(RUN_DIR)) return;
  try {
    execFileSync('bash', [DOWN_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
  } catch (err) {
    process.stderr.write(`[cluster] cluster-down.sh failed: ${(err as Error).message}\n`);
  }
}
