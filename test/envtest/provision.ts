// Makes sure the control-plane binaries exist, running provision.sh (idempotent, flock-guarded)
// when they do not. Its `[envtest]` progress lines are echoed to stderr; the full (very verbose)
// build output goes to a log file next to the cache.
import { spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { tailFile } from './process.js';

export const K8S_VERSION = '1.20.2';
const PROVISION_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'provision.sh');

export function k8sCacheDir(): string {
  return process.env.ISTHMUS_K8S_CACHE ?? join(homedir(), '.cache', 'isthmus', `k8s-${K8S_VERSION}`);
}

export function k8sBinDir(): string {
  return join(k8sCacheDir(), 'bin');
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const REQUIRED = ['kube-apiserver', 'kube-controller-manager'];

/** The build recipe provision.sh stamps into the bin dir; binaries of an older recipe are rebuilt. */
function recipe(): string {
  return /^RECIPE=(\S+)$/m.exec(readFileSync(PROVISION_SCRIPT, 'utf8'))?.[1] ?? '';
}

function provisioned(binDir: string): boolean {
  let stamped = '';
  try {
    stamped = readFileSync(join(binDir, '.recipe'), 'utf8').trim();
  } catch {
    return false;
  }
  return (
    stamped === recipe() &&
    which('etcd') !== undefined &&
    REQUIRED.every((b) => isExecutable(join(binDir, b)))
  );
}

let inFlight: Promise<void> | undefined;

/** Runs provision.sh unless etcd and the cached Kubernetes binaries are already there. */
export function ensureProvisioned(binDir = k8sBinDir()): Promise<void> {
  if (provisioned(binDir)) return Promise.resolve();
  inFlight ??= runProvisionScript().finally(() => {
    inFlight = undefined;
  });
  return inFlight.then(() => {
    if (!provisioned(binDir)) throw new Error(`[envtest] provision.sh finished but ${binDir} is incomplete`);
  });
}

function runProvisionScript(): Promise<void> {
  const cache = k8sCacheDir();
  mkdirSync(dirname(cache), { recursive: true });
  const logFile = `${cache}.provision.log`;
  const log = createWriteStream(logFile, { flags: 'a' });
  process.stderr.write(`[envtest] provisioning Kubernetes ${K8S_VERSION} binaries (full log: ${logFile})\n`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [PROVISION_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${line}\n`);
        if (line.startsWith('[envtest]')) process.stderr.write(`${line}\n`);
      });
    }
    child.once('error', reject);
    child.once('close', (code) => {
      log.end(() => {
        if (code === 0) {
          process.stderr.write(`[envtest] provisioned in ${((Date.now() - started) / 1000).toFixed(0)}s\n`);
          resolve();
        } else {
          reject(new Error(`[envtest] provision.sh exited with ${code}; last lines:\n${tailFile(logFile)}`));
        }
      });
    });
  });
}
