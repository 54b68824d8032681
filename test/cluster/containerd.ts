// A private containerd (own root, state and socket; never the system instance) with the CRI
// settings kubelet needs on this kind of machine.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ManagedProcess, sleep, spawnLogged, tailFile } from '../envtest/process.js';
import { CNI_BIN_DIR, clusterCacheDir, IMAGES, LOG_DIR, RUN_DIR } from './config.js';
import { run, runOk } from './exec.js';
import { record } from './state.js';

export interface Containerd {
  readonly socket: string;
  readonly cniConfDir: string;
  readonly process: ManagedProcess;
  /** `ctr -n k8s.io ...` against this instance. */
  ctr(args: string[]): Promise<string>;
}

export function containerdConfig(paths: {
  root: string;
  state: string;
  socket: string;
  runcRoot: string;
  cniConfDir: string;
}): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${paths.root}"
state = "${paths.state}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${paths.socket}"

[ttrpc]
  address = "${paths.socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[${cri}]
  sandbox_image = "${IMAGES.pause}"
  restrict_oom_score_adj = true
  enable_selinux = false
  max_container_log_line_size = 16384

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "${paths.runcRoot}"

[${cri}.cni]
  bin_dir = "${CNI_BIN_DIR}"
  conf_dir = "${paths.cniConfDir}"
  max_conf_num = 1

[${cri}.registry]
  config_path = ""
`;
}

export async function startContainerd(timeoutMs = 30_000): Promise<Containerd> {
  const root = join(clusterCacheDir(), 'containerd-root');
  const state = join(RUN_DIR, 'containerd');
  const socket = join(RUN_DIR, 'containerd.sock');
  const runcRoot = join(state, 'runc');
  const cniConfDir = join(RUN_DIR, 'cni', 'net.d');
  for (const d of [root, state, cniConfDir]) mkdirSync(d, { recursive: true });
  const configFile = join(RUN_DIR, 'containerd.toml');
  writeFileSync(configFile, containerdConfig({ root, state, socket, runcRoot, cniConfDir }));
  record({
    CONTAINERD_SOCK: socket,
    CONTAINERD_STATE: state,
    CONTAINERD_ROOT: root,
    RUNC_ROOT: join(runcRoot, 'k8s.io'),
  });
  const proc = spawnLogged(
    'containerd',
    'containerd',
    ['--config', configFile, '--log-level', 'warn'],
    join(LOG_DIR, 'containerd.log'),
  );
  record({ CONTAINERD_PID: proc.pid });
  const ctr = (args: string[]) =>
    runOk('ctr', ['--address', socket, '-n', 'k8s.io', ...args], { timeoutMs: 300_000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.isRunning()) throw new Error(`[cluster] containerd exited: ${tailFile(proc.logFile)}`);
    const res = await run('ctr', ['--address', socket, 'version'], { timeoutMs: 5000 });
    if (res.code === 0) break;
    if (Date.now() > deadline)
      throw new Error(`[cluster] containerd not ready: ${res.stderr}\n${tailFile(proc.logFile)}`);
    await sleep(100);
  }
  return { socket, cniConfDir, process: proc, ctr };
}

/** Removes containers a crashed run left in the persistent root (their snapshots too). */
export async function removeStaleContainers(c: Containerd): Promise<void> {
  const ids = (await c.ctr(['containers', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
  for (const id of ids) {
    await run('ctr', ['--address', c.socket, '-n', 'k8s.io', 'tasks', 'rm', '-f', id]);
    await run('ctr', ['--address', c.socket, '-n', 'k8s.io', 'containers', 'rm', id]);
  }
}
