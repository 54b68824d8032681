/**
 * One local instance ("pod"): its loopback address, its sidecar (an in-process SidecarProxy in
 * explicit-proxy mode: outbound on <ip>:15001, inbound on <ip>:<service port>, admin on
 * <ip>:15000, Prometheus on <ip>:15090, each falling back to a free port when taken) and its
 * app process. In-process sidecars share one Node event loop (cheaper than 6 extra processes)
 * while keeping separate tables, clusters and metrics per pod.
 */
import winston from 'winston';
import { PORTS } from '../api/mesh.js';
import type { CompileResult } from '../compiler/index.js';
import { SidecarProxy } from '../proxy/index.js';
import { formatErrors } from '../tables/index.js';
import { preferredPort } from './addresses.js';
import type { AppProcess } from './app-process.js';
import { configKey, localTables, OUTBOUND_LISTENER } from './localize.js';
import type { PodPlacement } from './pods.js';

export type SidecarLogLevel = 'error' | 'warn' | 'info' | 'debug';

function podLogger(podName: string, level: SidecarLogLevel): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.printf((i) => `  [sidecar ${podName}] ${i.level}: ${i.message}`),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}

export class LocalPod {
  readonly proxy: SidecarProxy;
  app: AppProcess | undefined;
  private applied = '';

  private constructor(
    readonly placement: PodPlacement,
    readonly appPort: number,
    outboundPort: number,
    adminPort: number,
    statsPort: number,
    logLevel: SidecarLogLevel,
  ) {
    const ip = placement.ip;
    this.proxy = new SidecarProxy({
      adminPort,
      statsPort,
      healthPort: null,
      adminAddress: ip,
      serviceAddress: ip,
      listeners: { address: ip, ports: { [OUTBOUND_LISTENER]: outboundPort } },
      logger: podLogger(placement.podName, logLevel),
    });
  }

  /** Starts the sidecar's admin and metrics servers (listeners come with the first config). */
  static async create(
    placement: PodPlacement,
    appPort: number,
    logLevel: SidecarLogLevel,
  ): Promise<LocalPod> {
    const ip = placement.ip;
    const pod = new LocalPod(
      placement,
      appPort,
      await preferredPort(ip, PORTS.outboundCapture),
      await preferredPort(ip, PORTS.admin),
      await preferredPort(ip, PORTS.prometheus),
      logLevel,
    );
    await pod.proxy.start();
    return pod;
  }

  get name(): string {
    return this.placement.podName;
  }
  get ip(): string {
    return this.placement.ip;
  }
  get inboundPorts(): readonly number[] {
    return this.placement.workload.inboundPorts;
  }
  /** The HTTP_PROXY port of the app (valid once a config was applied). */
  get outboundPort(): number {
    return this.proxy.listenerPort(OUTBOUND_LISTENER) ?? 0;
  }

  /** Applies the compiled config when it differs from the running one; true when applied. */
  async apply(r: CompileResult): Promise<boolean> {
    const key = configKey(r);
    if (key === this.applied) return false;
    const result = await this.proxy.applyTables(localTables(r, this.inboundPorts, this.appPort));
    if (!result.ok)
      throw new Error(
        `sidecar ${this.name} rejected config ${result.version}:\n${formatErrors(result.errors)}`,
      );
    this.applied = key;
    return true;
  }

  async stop(drainMs: number): Promise<void> {
    await this.proxy.stop(drainMs);
  }
}
