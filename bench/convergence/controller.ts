/**
 * The reconcile loop as its own process for the convergence benchmark (so its RSS is the
 * controller's alone). argv: <server> <token> <caFile>. Prints a JSON line with its memory
 * every second on stdout.
 */
import { readFileSync } from 'node:fs';
import { KubeRest } from '../../src/config-source/kubernetes-rest.js';
import { startReconciler } from '../../src/controller/reconcile.js';

const [server, token, caFile] = process.argv.slice(2) as [string, string, string];
const rest = new KubeRest({ server, token, ca: readFileSync(caFile) });
const r = await startReconciler({ rest, namespace: 'istio-system', rootNamespace: 'istio-system' });
setInterval(() => {
  const m = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, leader: r.isLeader(), classes: r.stats.classes, lastCompileMs: r.stats.lastCompileMs, publishWrites: r.publisher.stats.writes })}\n`,
  );
}, 1000);
process.on('SIGTERM', () => void r.stop().then(() => process.exit(0)));
