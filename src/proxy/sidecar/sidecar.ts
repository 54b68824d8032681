/**
 * Sidecar mode (`isthmus proxy sidecar`): everything an injected pod needs, working before
 * (and without) any control-plane config: capture listeners 15001/15006 on 0.0.0.0 (and ::
 * when the pod has IPv6), admin 15000 (pod-local), Prometheus 15090, health 15021 and the
 * agent's status server 15020. With no config every captured connection is passed through to
 * its original destination; a config adds HTTP routing and TCP clusters per original port.
 */

import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'winston';
import {
  APP_PROBERS_ENV,
  appMetricsFromEnv,
  parseAppProbers,
  StatusServer,
} from '../../agent/status/index.js';
import { numTrustedProxiesFromEnv } from '../../authz/xff.js';
import type { OriginalDst } from '../../iptables/original-dst.js';
import { SidecarProxy } from '../proxy.js';
import type { TelemetryOptions } from '../telemetry/request-telemetry.js';
import type { CertificateSource } from '../tls/identity.js';
import { CaptureListener } from './capture-server.js';
import { workloadFromEnv } from './workload.js';

export interface SidecarPorts {
  outbound: number;
  inbound: number;
  /** null = off (tests); 0 = ephemeral. */
  admin: number | null;
  stats: number | null;
  health: number | null;
  status: number | null;
}

export const SIDECAR_PORTS: SidecarPorts = {
  outbound: 15001,
  inbound: 15006,
  admin: 15000,
  stats: 15090,
  health: 15021,
  status: 15020,
};

export interface SidecarOptions {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  ports?: Partial<SidecarPorts>;
  /** IPv4 address of the capture, stats, health and status listeners (default 0.0.0.0). */
  bindAddress?: string;
  /** Also listen on :: (default: when the pod has an IPv6 address). */
  ipv6?: boolean;
  adminAddress?: string;
  /** Time in-flight requests and connections get on shutdown. */
  drainMs?: number;
  /** Original destination reader (tests inject one; default SO_ORIGINAL_DST). */
  originalDst?: (socket: Socket) => OriginalDst | null;
  sniffTimeoutMs?: number;
  /** Called once the sidecar stopped after /quitquitquit (the CLI exits there). */
  onExit?: (code: number) => void;
  /** Workload certificates (the agent's CertificateManager): enables mesh mTLS. */
  certificates?: CertificateSource;
  /** Tracing and access logs (from PROXY_CONFIG and flags, see cli/commands/proxy.ts). */
  telemetry?: TelemetryOptions;
}

function hasIPv6(): boolean {
  return Object.values(networkInterfaces()).some((addrs) => (addrs ?? []).some((a) => a.family === 'IPv6'));
}

export class Sidecar {
  readonly proxy: SidecarProxy;
  readonly outbound: CaptureListener;
  readonly inbound: CaptureListener;
  readonly status: StatusServer | null;
  private readonly opts: SidecarOptions;
  private stopping: Promise<void> | null = null;

  private constructor(opts: SidecarOptions) {
    this.opts = opts;
    const env = opts.env ?? process.env;
    const ports = { ...SIDECAR_PORTS, ...opts.ports };
    const log = opts.logger;
    this.proxy = new SidecarProxy({
      adminPort: ports.admin,
      statsPort: ports.stats,
      healthPort: ports.health,
      adminAddress: opts.adminAddress ?? '127.0.0.1',
      serviceAddress: opts.bindAddress ?? '0.0.0.0',
      listeners: { captureOnly: true },
      logger: log,
      node: workloadFromEnv(env),
      readyWithoutConfig: true,
      ...(opts.certificates ? { certificates: opts.certificates } : {}),
      ...(opts.telemetry ? { telemetry: opts.telemetry } : {}),
      ...(opts.sniffTimeoutMs !== undefined ? { tcp: { sniffTimeoutMs: opts.sniffTimeoutMs } } : {}),
      onQuit: () => {
        void this.stop().then(() => this.opts.onExit?.(0));
      },
    });
    const proxy = this.proxy;
    // ProxyConfig gatewayTopology.numTrustedProxies: how remote.ip comes from X-Forwarded-For.
    proxy.security.xffNumTrustedHops = numTrustedProxiesFromEnv(env.PROXY_CONFIG);
    const deps = {
      snapshot: () => proxy.snapshot,
      tcp: proxy.tcp,
      acceptHttp: (name: string, socket: Socket, h2: boolean) => proxy.acceptHttp(name, socket, h2),
      log,
      ...(opts.originalDst ? { originalDst: opts.originalDst } : {}),
      ...(opts.sniffTimeoutMs !== undefined ? { sniffTimeoutMs: opts.sniffTimeoutMs } : {}),
      inboundTls: proxy.inboundTls,
    };
    this.outbound = new CaptureListener('outbound', SIDECAR_PORTS.outbound, deps);
    this.inbound = new CaptureListener('inbound', SIDECAR_PORTS.inbound, deps);
    proxy.addReadinessCheck(() => this.outbound.bound && this.inbound.bound);

    if (ports.status === null) {
      this.status = null;
    } else {
      const { probers, errors } = parseAppProbers(env[APP_PROBERS_ENV]);
      for (const e of errors) log.warn(`app probes: ${e}`);
      this.status = new StatusServer({
        target: {
          isReady: () => proxy.isReady(),
          prometheus: () => proxy.prometheus(),
          quit: () => {
            void this.stop().then(() => this.opts.onExit?.(0));
          },
        },
        probers,
        log,
        appMetrics: appMetricsFromEnv(env.ISTIO_PROMETHEUS_ANNOTATIONS),
        localAddresses: env.INSTANCE_IP ? [env.INSTANCE_IP] : [],
      });
    }
  }

  /** Starts every server; resolves once all are bound. */
  static async start(opts: SidecarOptions): Promise<Sidecar> {
    const s = new Sidecar(opts);
    const ports = { ...SIDECAR_PORTS, ...opts.ports };
    const v4 = opts.bindAddress ?? '0.0.0.0';
    const hosts = (opts.ipv6 ?? hasIPv6()) ? [v4, '::'] : [v4];
    try {
      await s.proxy.start();
      if (s.status !== null) await s.status.listen(ports.status!, v4);
      await s.outbound.listen(ports.outbound, hosts);
      await s.inbound.listen(ports.inbound, hosts);
    } catch (err) {
      await s.stop(0);
      throw err;
    }
    return s;
  }

  get outboundPort(): number {
    return this.outbound.ports[0] ?? 0;
  }
  get inboundPort(): number {
    return this.inbound.ports[0] ?? 0;
  }

  /** Stops accepting, drains in-flight work (up to drainMs), closes everything. Idempotent. */
  stop(drainMs = this.opts.drainMs ?? 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.outbound.close();
      this.inbound.close();
      await this.proxy.stop(drainMs);
      this.status?.close();
    })();
    return this.stopping;
  }
}
