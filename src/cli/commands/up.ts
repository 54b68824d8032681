/**
 * `isthmus up [dir]`: runs a whole mesh on this machine (see src/local): the example's
 * workloads as local processes, each behind its own sidecar, routing compiled from the watched
 * `<dir>/mesh/` Istio YAML. Ctrl-C stops everything.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { LocalMesh } from '../../local/index.js';
import { isLogLevel } from '../../proxy/log.js';

interface UpCliOptions {
  port: string;
  mesh?: string;
  manifests?: string;
  front?: string;
  namespace: string;
  logs?: boolean;
  logLevel: string;
  startTimeout: string;
}

const DEFAULT_DIR = 'examples/bookinfo';

function portOf(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port: not a port: ${value}`);
  return n;
}

export function register(program: Command): void {
  program
    .command('up')
    .description(
      'Run a mesh locally: the workloads of <dir>/k8s as processes, each with its sidecar, ' +
        'routing from the watched <dir>/mesh Istio YAML',
    )
    .argument('[dir]', `example directory (default ${DEFAULT_DIR})`)
    .option('-p, --port <port>', 'front page port on 127.0.0.1 (0 = any free port)', '9080')
    .option('--mesh <dir>', 'watched directory of Istio YAML (default <dir>/mesh)')
    .option('--manifests <path>', 'Kubernetes manifests to run (default <dir>/k8s)')
    .option('--front <service>', 'Service the front page port leads to (default productpage or the first)')
    .option('-n, --namespace <ns>', 'namespace of manifests that have none', 'default')
    .option('--logs', "stream the apps' output")
    .option('--log-level <level>', 'sidecar log level: error, warn, info or debug', 'warn')
    .option('--start-timeout <ms>', 'time each app has to start listening', '15000')
    .action(async (dirArg: string | undefined, o: UpCliOptions) => {
      const dir = dirArg ?? DEFAULT_DIR;
      if (!dirArg && !existsSync(dir))
        throw new Error(`give the example directory, e.g. \`isthmus up ${DEFAULT_DIR}\``);
      if (!isLogLevel(o.logLevel)) throw new Error(`--log-level: unknown level ${o.logLevel}`);
      const mesh = new LocalMesh({
        dir,
        port: portOf(o.port),
        ...(o.mesh ? { meshDir: o.mesh } : {}),
        ...(o.manifests ? { manifests: o.manifests } : {}),
        ...(o.front ? { front: o.front } : {}),
        namespace: o.namespace,
        sidecarLogLevel: o.logLevel,
        appLogs: o.logs === true,
        startTimeoutMs: Number(o.startTimeout),
      });
      let signals = 0;
      const onSignal = () => {
        signals++;
        if (signals > 1) {
          mesh.kill();
          process.exit(130);
        }
        process.stdout.write('\nstopping...\n');
        void mesh.stop().then(() => {
          process.stdout.write('stopped: all apps and sidecars are down\n');
          process.exit(0);
        });
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await mesh.start();
      } catch (err) {
        if (signals > 0) return; // the signal handler is stopping and exiting
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        throw err;
      }
      if (signals > 0) return;
      process.stdout.write(`${mesh.statusLines().join('\n')}\n`);
    });
}
