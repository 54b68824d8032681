/**
 * `isthmus proxy`: runs the sidecar proxy on a static compiled config, like `envoy -c`:
 *   isthmus proxy --config routes.json [--endpoints endpoints.json] [--watch]
 * The files hold the compiled tables (src/tables), JSON or YAML. With --watch a changed file is
 * re-validated and hot-swapped; a bad edit is rejected and the running config stays.
 */

import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { SidecarProxy } from '../../proxy/index.js';
import { isLogLevel } from '../../proxy/log.js';
import { formatErrors } from '../../tables/index.js';

interface ProxyCliOptions {
  config: string;
  endpoints?: string;
  watch?: boolean;
  adminPort: string;
  statsPort: string;
  healthPort: string;
  adminAddress: string;
  bindAddress?: string;
  listenerPort: string[];
  logLevel: string;
  drainMs: string;
}

function port(value: string, flag: string): number | null {
  if (value === 'off') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag}: not a port: ${value}`);
  return n;
}

/** `name=port` or `logicalPort=port` pairs, e.g. virtualOutbound=0 or 15001=25001. */
function listenerPorts(pairs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of pairs) {
    const eq = pair.lastIndexOf('=');
    if (eq <= 0) throw new Error(`--listener-port: expected name=port, got "${pair}"`);
    out[pair.slice(0, eq)] = port(pair.slice(eq + 1), '--listener-port') ?? 0;
  }
  return out;
}

async function load(path: string): Promise<unknown> {
  return parse(await readFile(path, 'utf8'));
}

export function register(program: Command): void {
  program
    .command('proxy')
    .description('Run the sidecar proxy on a static compiled config (like envoy -c)')
    .requiredOption('-c, --config <file>', 'compiled tables (JSON or YAML, apiVersion isthmus.io/tables/v1)')
    .option(
      '--endpoints <file>',
      'endpoint table (apiVersion isthmus.io/endpoints/v1); overrides inline endpoints',
    )
    .option('-w, --watch', 'reload the files when they change (invalid edits are rejected)')
    .option('--admin-port <port>', 'admin port, "off" to disable', '15000')
    .option('--stats-port <port>', 'Prometheus port (/stats/prometheus), "off" to disable', '15090')
    .option('--health-port <port>', 'health port (/healthz/ready), "off" to disable', '15021')
    .option('--admin-address <addr>', 'admin bind address (keep it pod-local)', '127.0.0.1')
    .option('--bind-address <addr>', 'bind every listener to this address instead of the config one')
    .option(
      '--listener-port <name=port>',
      'bind a listener (by name or logical port) elsewhere; repeatable',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .option('--drain-ms <ms>', 'on SIGTERM, time allowed for in-flight requests', '5000')
    .action(async (o: ProxyCliOptions) => {
      if (!isLogLevel(o.logLevel)) throw new Error(`--log-level: unknown level ${o.logLevel}`);
      const drainMs = Number(o.drainMs);
      const proxy = new SidecarProxy({
        adminPort: port(o.adminPort, '--admin-port'),
        statsPort: port(o.statsPort, '--stats-port'),
        healthPort: port(o.healthPort, '--health-port'),
        adminAddress: o.adminAddress,
        listeners: {
          ports: listenerPorts(o.listenerPort),
          ...(o.bindAddress ? { address: o.bindAddress } : {}),
        },
        logLevel: o.logLevel,
        onQuit: () => process.exit(0),
      });
      await proxy.start();

      const applyConfig = async (): Promise<boolean> => {
        const result = await proxy.applyTables(await load(o.config));
        if (!result.ok)
          process.stderr.write(`isthmus proxy: ${o.config} rejected:\n${formatErrors(result.errors)}\n`);
        return result.ok;
      };
      const applyEndpoints = async (): Promise<boolean> => {
        if (!o.endpoints) return true;
        const result = proxy.applyEndpoints(await load(o.endpoints));
        if (!result.ok)
          process.stderr.write(`isthmus proxy: ${o.endpoints} rejected:\n${formatErrors(result.errors)}\n`);
        return result.ok;
      };
      // Config first: its inline endpoints (if any) are then overridden by the endpoints file.
      if (!(await applyConfig()) || !(await applyEndpoints())) {
        await proxy.stop(0);
        process.exitCode = 1;
        return;
      }

      const files = [o.config, ...(o.endpoints ? [o.endpoints] : [])];
      if (o.watch) {
        // Polling survives the symlink swap Kubernetes uses to update mounted ConfigMaps.
        for (const file of files) {
          watchFile(file, { interval: 1000 }, () => {
            const apply =
              file === o.config ? () => applyConfig().then((ok) => ok && applyEndpoints()) : applyEndpoints;
            apply().catch((err: unknown) => proxy.log.error(`reload of ${file} failed: ${String(err)}`));
          });
        }
      }
      const shutdown = () => {
        for (const file of files) unwatchFile(file);
        void proxy.stop(drainMs).then(() => process.exit(0));
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    });
}
