// The cluster by hand:
//   npm run cluster:up     start it (and install the mesh unless --no-mesh); Ctrl-C tears it down
//   npm run cluster:down   tear down what a crashed run left behind
import { existsSync } from 'node:fs';
import { startCluster } from './cluster.js';
import { RUN_DIR } from './config.js';
import { log } from './exec.js';
import { installMesh } from './mesh.js';
import { teardownSync } from './state.js';

async function up(args: string[]): Promise<void> {
  const cluster = await startCluster();
  if (!args.includes('--no-mesh')) await installMesh(cluster);
  const kc = cluster.controlPlane.kubeconfigPath;
  process.stdout.write(
    `\ncluster ready (started in ${cluster.startSeconds.toFixed(1)}s)\n  export KUBECONFIG=${kc}\n  kubectl get nodes,pods -A\n  kubectl apply -f examples/bookinfo/k8s/bookinfo.yaml\nCtrl-C to tear it down.\n`,
  );
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await cluster.stop();
  process.exit(0);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'up') {
  up(rest).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
} else if (command === 'down') {
  if (!existsSync(RUN_DIR)) log('no cluster state found; nothing to do');
  teardownSync();
} else {
  process.stderr.write('usage: tsx test/cluster/cli.ts up [--no-mesh] | down\n');
  process.exit(2);
}
