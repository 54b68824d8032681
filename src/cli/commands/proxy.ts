/**
 * `isthmus proxy`: runs the sidecar proxy on a static compiled config, like `envoy -c`:
 *   isthmus proxy --config routes.json [--endpoints endpoints.json] [--watch]
 * The files hold the compiled tables (src/tables), JSON or YAML. With --watch a changed file is
 * re-validated and hot-swapped; a bad edit is rejected and the running config stays.
 *
 * `isthmus proxy sidecar [--domain d] [--proxyLogLevel l] [--config f]`: what the injected
 * istio-proxy container runs: capture listeners 15001/15006, passthrough by original destination
 * until (and beyond) a config, agent status server 15020. Istio flags it does not use are
 * accepted and ignored (logged at debug).
 */

import { existsSync, readFileSync, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse } from 'yaml';
import type { ConfigWatcher } from '../../agent/config/index.js';
import { CertificateManager, DEFAULT_CA_ROOT_PATH, DEFAULT_TOKEN_PATH } from '../../agent/index.js';
import { SidecarProxy } from '../../proxy/index.js';
import { createLogger, isLogLevel, type LogLevel } from '../../proxy/log.js';
import { Sidecar } from '../../proxy/sidecar/index.js';
import {
  accessLogOptions,
  parseSampling,
  sidecarNodeId,
  tracingFromEnv,
} from '../../proxy/telemetry/proxy-config.js';
import type { TelemetryOptions } from '../../proxy/telemetry/request-telemetry.js';
import { collectorUrl } from '../../proxy/telemetry/zipkin.js';
import { formatErrors } from '../../tables/index.js';

interface ConfigOptions {
  config?: string;
  endpoints?: string;
  watch?: boolean;
}

interface TelemetryCliOptions {
  zipkinAddress?: string;
  traceSampling?: string;
  accessLogFile?: string;
  accessLogEncoding?: string;
  accessLogFormat?: string;
}

interface ProxyCliOptions extends ConfigOptions, TelemetryCliOptions {
  adminPort: string;
  statsPort: string;
  healthPort: string;
  adminAddress: string;
  bindAddress?: string;
  listenerPort: string[];
  logLevel: string;
  drainMs: string;
}

interface SidecarCliOptions extends ConfigOptions, TelemetryCliOptions {
  domain?: string;
  proxyLogLevel?: string;
  logLevel?: string;
  outboundPort: string;
  inboundPort: string;
  adminPort: string;
  statsPort: string;
  healthPort: string;
  statusPort: string;
  bindAddress: string;
  adminAddress: string;
  ipv6?: boolean;
  drainMs: string;
  caAddress?: string;
  tokenPath: string;
  caRootPath: string;
  configWatch: boolean;
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

/** Istio's proxy log levels (trace..off) mapped onto ours. */
export function istioLogLevel(level: string): LogLevel | undefined {
  const l = level.toLowerCase();
  if (isLogLevel(l)) return l;
  if (l === 'trace') return 'debug';
  if (l === 'warning') return 'warn';
  if (l === 'critical' || l === 'off') return 'error';
  return undefined;
}

async function load(path: string): Promise<unknown> {
  return parse(await readFile(path, 'utf8'));
}

/**
 * Applies the config files (endpoints after tables) and, with --watch, re-applies them on
 * change. Resolves false when the first apply was rejected. Returns the unwatch function.
 */
async function attachConfig(
  proxy: SidecarProxy,
  o: ConfigOptions,
): Promise<{ ok: boolean; unwatch: () => void }> {
  const config = o.config;
  if (config === undefined) return { ok: true, unwatch: () => {} };
  const applyConfig = async (): Promise<boolean> => {
    const result = await proxy.applyTables(await load(config));
    if (!result.ok)
      process.stderr.write(`isthmus proxy: ${config} rejected:\n${formatErrors(result.errors)}\n`);
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
  const ok = (await applyConfig()) && (await applyEndpoints());
  const files = [config, ...(o.endpoints ? [o.endpoints] : [])];
  if (o.watch) {
    // Polling survives the symlink swap Kubernetes uses to update mounted ConfigMaps.
    for (const file of files) {
      watchFile(file, { interval: 1000 }, () => {
        const apply =
          file === config ? () => applyConfig().then((ok) => ok && applyEndpoints()) : applyEndpoints;
        apply().catch((err: unknown) => proxy.log.error(`reload of ${file} failed: ${String(err)}`));
      });
    }
  }
  return {
    ok,
    unwatch: () => {
      for (const file of files) unwatchFile(file);
    },
  };
}

const collect = (v: string, acc: string[]) => [...acc, v];

/**
 * Tracing and access log settings: env PROXY_CONFIG (ProxyConfig JSON, `tracing.zipkin.address`,
 * `tracing.sampling`) and env ISTHMUS_ACCESS_LOG_FILE/_ENCODING/_FORMAT, overridden by the flags.
 * Tracing is on when PROXY_CONFIG has `tracing` or a tracing flag is given. An access log set
 * here (per pod) wins over the mesh-wide one (mesh config `accessLogFile`, which arrives with
 * the tables and is applied on each swap otherwise). Throws naming the env var or flag that is
 * wrong.
 */
export function telemetryFromCli(
  o: TelemetryCliOptions,
  env: Record<string, string | undefined> = process.env,
): TelemetryOptions {
  let tracing = tracingFromEnv(env.PROXY_CONFIG);
  if (o.zipkinAddress !== undefined) {
    try {
      collectorUrl(o.zipkinAddress);
    } catch (err) {
      throw new Error(`--zipkin-address: ${(err as Error).message}`);
    }
    tracing = { sampling: tracing?.sampling ?? 1, zipkin: { address: o.zipkinAddress } };
  }
  if (o.traceSampling !== undefined) {
    const sampling = parseSampling(o.traceSampling, '--trace-sampling');
    tracing = { ...(tracing ?? {}), sampling };
  }
  const fromEnv = o.accessLogFile === undefined;
  const accessLog = fromEnv
    ? accessLogOptions(
        env.ISTHMUS_ACCESS_LOG_FILE,
        env.ISTHMUS_ACCESS_LOG_ENCODING,
        env.ISTHMUS_ACCESS_LOG_FORMAT,
        {
          file: 'ISTHMUS_ACCESS_LOG_FILE',
          encoding: 'ISTHMUS_ACCESS_LOG_ENCODING',
          format: 'ISTHMUS_ACCESS_LOG_FORMAT',
        },
      )
    : accessLogOptions(o.accessLogFile, o.accessLogEncoding, o.accessLogFormat);
  const out: TelemetryOptions = {
    nodeId: sidecarNodeId(env),
    ...(env.INSTANCE_IP ? { instanceIp: env.INSTANCE_IP } : {}),
    ...(env.ISTIO_META_MESH_ID ? { meshId: env.ISTIO_META_MESH_ID } : {}),
    ...(env.ISTIO_META_CLUSTER_ID ? { clusterId: env.ISTIO_META_CLUSTER_ID } : {}),
  };
  if (tracing) out.tracing = tracing;
  if (accessLog) out.accessLog = accessLog;
  return out;
}

/** The tracing and access log flags, shared by `proxy` and `proxy sidecar`. */
function telemetryFlags(c: Command): Command {
  return c
    .option(
      '--zipkin-address <host:port>',
      'Zipkin collector (POST /api/v2/spans); default from PROXY_CONFIG tracing.zipkin.address',
    )
    .option('--trace-sampling <percent>', 'percent of new traces sampled, 0-100 (Istio default 1)')
    .option(
      '--access-log-file <path>',
      'access log file, e.g. /dev/stdout (default: the mesh config accessLogFile, else off; ' +
        'env ISTHMUS_ACCESS_LOG_FILE; either wins over the mesh config)',
    )
    .option('--access-log-encoding <enc>', 'TEXT or JSON (Istio accessLogEncoding; default TEXT)')
    .option('--access-log-format <format>', 'Envoy format string (TEXT) or JSON object of fields (JSON)');
}

export function register(program: Command): void {
  const proxy = program
    .command('proxy')
    .description(
      'Run the sidecar proxy on a static compiled config (like envoy -c); `proxy sidecar` for pods',
    )
    .enablePositionalOptions()
    .option('-c, --config <file>', 'compiled tables (JSON or YAML, apiVersion isthmus.io/tables/v1)')
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
      collect,
      [] as string[],
    )
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .option('--drain-ms <ms>', 'on SIGTERM, time allowed for in-flight requests', '5000');
  telemetryFlags(proxy).action(async (o: ProxyCliOptions) => {
    if (!o.config)
      throw new Error("required option '-c, --config <file>' not specified (or use `proxy sidecar`)");
    if (!isLogLevel(o.logLevel)) throw new Error(`--log-level: unknown level ${o.logLevel}`);
    const drainMs = Number(o.drainMs);
    const telemetry = telemetryFromCli(o);
    const proxy = new SidecarProxy({
      telemetry,
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
    const { ok, unwatch } = await attachConfig(proxy, o);
    if (!ok) {
      await proxy.stop(0);
      process.exitCode = 1;
      return;
    }
    const shutdown = () => {
      unwatch();
      void proxy.stop(drainMs).then(() => process.exit(0));
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });

  const sidecar = proxy
    .command('sidecar')
    .description(
      'Run as the injected sidecar: capture listeners 15001/15006 (passthrough by original destination ' +
        'until a config says otherwise), admin 15000, metrics 15090, health 15021, agent 15020',
    )
    .option('--domain <domain>', 'DNS search domain of the pod (Istio flag; informational)')
    .option('--proxyLogLevel <level>', 'Istio log level: trace, debug, info, warning, error, critical, off')
    .option('--log-level <level>', 'error, warn, info or debug (overrides --proxyLogLevel)')
    .option('-c, --config <file>', 'static compiled tables to apply at start (optional)')
    .option('--endpoints <file>', 'endpoint table to apply after the tables')
    .option('-w, --watch', 'reload the files when they change')
    .option('--outbound-port <port>', 'outbound capture port', '15001')
    .option('--inbound-port <port>', 'inbound capture port', '15006')
    .option('--admin-port <port>', 'admin port, "off" to disable', '15000')
    .option('--stats-port <port>', 'Prometheus port, "off" to disable', '15090')
    .option('--health-port <port>', 'health port, "off" to disable', '15021')
    .option('--status-port <port>', 'agent status port, "off" to disable', '15020')
    .option('--bind-address <addr>', 'IPv4 address of the capture and service listeners', '0.0.0.0')
    .option('--admin-address <addr>', 'admin bind address (keep it pod-local)', '127.0.0.1')
    .option('--no-ipv6', 'do not listen on :: even when the pod has IPv6')
    .option('--drain-ms <ms>', 'on SIGTERM or /quitquitquit, time allowed for in-flight work', '5000')
    .option('--ca-address <host:port>', 'mesh CA to get the workload certificate from (default: $CA_ADDR)')
    .option('--token-path <file>', 'projected service-account token (audience istio-ca)', DEFAULT_TOKEN_PATH)
    .option('--ca-root-path <file>', 'mesh root certificate', DEFAULT_CA_ROOT_PATH)
    .option(
      '--no-config-watch',
      'do not watch the published config ConfigMaps (in a pod, watched by default)',
    )
    .allowUnknownOption()
    .allowExcessArguments();
  telemetryFlags(sidecar).action(async (o: SidecarCliOptions, cmd: Command) => {
    const levelFlag = o.logLevel ?? o.proxyLogLevel ?? 'info';
    const level = istioLogLevel(levelFlag);
    if (level === undefined) throw new Error(`unknown log level ${levelFlag}`);
    const log = createLogger(level);
    if (cmd.args.length > 0) log.debug(`ignoring flags/arguments not used by isthmus: ${cmd.args.join(' ')}`);
    if (o.domain) log.debug(`pod domain ${o.domain}`);
    const drainMs = Number(o.drainMs);
    const outbound = port(o.outboundPort, '--outbound-port');
    const inbound = port(o.inboundPort, '--inbound-port');
    if (outbound === null || inbound === null) throw new Error('capture ports cannot be off');
    const telemetry = telemetryFromCli(o);
    const certificates = workloadCertificates(o, log);
    const sidecar = await Sidecar.start({
      telemetry,
      ...(certificates ? { certificates } : {}),
      logger: log,
      ports: {
        outbound,
        inbound,
        admin: port(o.adminPort, '--admin-port'),
        stats: port(o.statsPort, '--stats-port'),
        health: port(o.healthPort, '--health-port'),
        status: port(o.statusPort, '--status-port'),
      },
      bindAddress: o.bindAddress,
      adminAddress: o.adminAddress,
      ...(o.ipv6 === false ? { ipv6: false } : {}),
      drainMs,
      onExit: (code) => process.exit(code),
    });
    const p = sidecar.proxy;
    log.info(
      `sidecar started: outbound ${sidecar.outboundPort}, inbound ${sidecar.inboundPort}, admin ${p.adminPort}, ` +
        `stats ${p.statsPort}, health ${p.healthPort}, status ${sidecar.status?.port ?? 'off'}`,
    );
    // A bad config file is logged and ignored: passthrough keeps the pod working.
    const { unwatch } = await attachConfig(sidecar.proxy, o);
    const published = o.configWatch ? watchPublishedConfig(sidecar.proxy, log) : undefined;
    const shutdown = () => {
      unwatch();
      published?.close();
      certificates?.stop();
      void sidecar.stop(drainMs).then(() => process.exit(0));
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
}

/**
 * The workload certificate for mesh mTLS: fetched from the CA named by --ca-address or CA_ADDR
 * (the injected env) with the projected token. Without a CA address or a token the sidecar runs
 * without mTLS (plaintext passthrough), as a proxy outside a pod does.
 */
function workloadCertificates(
  o: SidecarCliOptions,
  log: ReturnType<typeof createLogger>,
): CertificateManager | undefined {
  const caAddress = o.caAddress ?? process.env.CA_ADDR;
  if (!caAddress) return undefined;
  if (!existsSync(o.tokenPath)) {
    log.warn(`no service-account token at ${o.tokenPath}: running without a workload certificate (no mTLS)`);
    return undefined;
  }
  const manager = new CertificateManager({
    caAddress,
    tokenPath: o.tokenPath,
    caRootPath: o.caRootPath,
    log,
  });
  manager.on('fetch-failed', (err: Error, retryInMs: number) =>
    log.warn(`workload certificate from ${caAddress} failed: ${err.message}; retrying in ${retryInMs} ms`),
  );
  return manager.start();
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const POD_LABELS_FILE = '/etc/istio/pod/labels';

/**
 * In a pod (KUBERNETES_SERVICE_HOST, POD_NAME, POD_NAMESPACE and the service-account token
 * present): watch the tables the controller publishes for this workload and hot-swap them.
 * Until that works (the controller may not have written this namespace's Role and ConfigMaps
 * yet) it retries in the background; meanwhile the sidecar serves passthrough.
 */
function watchPublishedConfig(
  proxy: SidecarProxy,
  log: ReturnType<typeof createLogger>,
): { close(): void } | undefined {
  const {
    KUBERNETES_SERVICE_HOST: host,
    KUBERNETES_SERVICE_PORT: port,
    POD_NAME,
    POD_NAMESPACE,
  } = process.env;
  const tokenFile = `${SERVICE_ACCOUNT_DIR}/token`;
  if (!host || !POD_NAME || !POD_NAMESPACE) return undefined;
  if (!existsSync(tokenFile)) {
    log.warn(`no service-account token at ${tokenFile}: not watching published config (passthrough only)`);
    return undefined;
  }
  let watcher: ConfigWatcher | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const attempt = async (delayMs: number): Promise<void> => {
    try {
      // Loaded here: only a sidecar in a pod watches published config (the Kubernetes client).
      const { parseDownwardLabels, startConfigWatcher } = await import('../../agent/config/index.js');
      const w = await startConfigWatcher({
        server: `https://${host.includes(':') ? `[${host}]` : host}:${port ?? '443'}`,
        tokenFile,
        caFile: `${SERVICE_ACCOUNT_DIR}/ca.crt`,
        namespace: POD_NAMESPACE,
        podName: POD_NAME,
        ...(existsSync(POD_LABELS_FILE)
          ? { labels: parseDownwardLabels(readFileSync(POD_LABELS_FILE, 'utf8')) }
          : {}),
        proxy,
      });
      if (closed) return w.close();
      watcher = w;
      log.info(`watching published config of workload class ${w.classId}`);
    } catch (err) {
      if (closed) return;
      log.warn(
        `cannot watch published config yet: ${err instanceof Error ? err.message : String(err)}; retrying in ${delayMs} ms`,
      );
      timer = setTimeout(() => void attempt(Math.min(delayMs * 2, 30_000)), delayMs);
      timer.unref();
    }
  };
  void attempt(1000);
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher?.close();
    },
  };
}
