/**
 * One sidecar agent as its own process, for the convergence benchmark: the agent's config
 * watcher (src/agent/config) with a real service-account token and only the Roles the
 * controller grants, validating what it receives as the proxy does (validateTables /
 * validateEndpoints), without a proxy behind it.
 *   argv: <server> <tokenFile> <caFile> <namespace> <podName> <labels as JSON>
 * stdout, one JSON line per event: {"ready":true} once configured, then
 * {"tables":"<version>","at":<epoch ms, fractional>} for every tables version applied.
 */
import { startConfigWatcher } from '../../src/agent/config/index.js';
import { validateEndpoints, validateTables } from '../../src/tables/index.js';

const [server, tokenFile, caFile, namespace, podName, labels] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const now = () => performance.timeOrigin + performance.now();
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

const watcher = await startConfigWatcher({
  server,
  tokenFile,
  caFile,
  namespace,
  podName,
  labels: JSON.parse(labels) as Record<string, string>,
  proxy: {
    applyTables: (json) => {
      const v = validateTables(json);
      if (!v.ok) return { ok: false, version: '', errors: v.errors };
      say({ tables: v.value.version, at: now() });
      return { ok: true, version: v.value.version };
    },
    applyEndpoints: (json) => {
      const v = validateEndpoints(json);
      return v.ok ? { ok: true, version: v.value.version } : { ok: false, version: '', errors: v.errors };
    },
  },
});
await watcher.ready;
say({ ready: true });
const stop = () => void watcher.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
