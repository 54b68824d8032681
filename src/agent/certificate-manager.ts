/**
 * The sidecar agent's workload certificate: generates a key in this process (it never leaves),
 * asks the mesh CA to sign it with the pod's projected service-account token, and keeps it
 * fresh. Renewal happens at ~80% of the lifetime (with jitter); while the CA is unreachable the
 * current certificate stays in service and requests are retried with backoff. Every new
 * certificate is announced with a 'certificate' event, so the proxy can swap its TLS context
 * (`server.setSecureContext`) without dropping connections.
 *
 * Events:
 * - 'certificate' (cert, reason: 'initial' | 'rotation')
 * - 'ready' (cert): once, with the first certificate
 * - 'fetch-failed' (error, retryInMs): a request failed; the current certificate (if any) stays
 */
import { EventEmitter } from 'node:events';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'winston';
import { createCsr, generateWorkloadKey, type WorkloadKeyType } from '../ca/csr.js';
import { createLogger } from '../util/log.js';
import { acceptCertificate, type WorkloadCertificate } from './accept.js';
import { requestCertificate } from './ca-client.js';
import { backoffDelayMs, rotationDelayMs } from './rotation.js';

export type { WorkloadCertificate } from './accept.js';

/** Where the injected sidecar finds its token and the mesh root (see webhooks/sidecar-template.yaml). */
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
export const DEFAULT_CA_ROOT_PATH = '/var/run/secrets/istio/root-cert.pem';

export interface CertificateManagerOptions {
  /** `host:port` of the CA (the injected CA_ADDR). */
  caAddress: string;
  /** Root the CA's serving certificate chains to; read from caRootPath when not given. */
  caRootPem?: string;
  caRootPath?: string;
  /** Verify the CA's serving certificate against this name instead of the dialled host. */
  caServerName?: string;
  /** Projected token (audience istio-ca), re-read for every request since kubelet rotates it. */
  tokenPath?: string;
  keyType?: WorkloadKeyType;
  /** Lifetime to ask for; the CA's default (24 h) when unset. */
  validitySeconds?: number;
  rotationRatio?: number;
  rotationJitter?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  requestTimeoutMs?: number;
  log?: Logger;
  random?: () => number;
  /**
   * How often the mounted root (caRootPath) is checked for a change (ms, default 10 s; 0 =
   * never). A changed root (the CA republished istio-ca-root-cert after a `cacerts` change)
   * renews the certificate at once, so the proxy trusts the new root bundle without waiting
   * for the next rotation. Not used with caRootPem.
   */
  rootWatchIntervalMs?: number;
}

export interface CertificateManagerEvents {
  certificate: [cert: WorkloadCertificate, reason: 'initial' | 'rotation'];
  ready: [cert: WorkloadCertificate];
  'fetch-failed': [error: Error, retryInMs: number];
}

/** setTimeout fires at once beyond this; longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CertificateManager extends EventEmitter<CertificateManagerEvents> {
  private readonly opts: Required<
    Pick<
      CertificateManagerOptions,
      | 'caRootPath'
      | 'tokenPath'
      | 'keyType'
      | 'rotationRatio'
      | 'rotationJitter'
      | 'retryInitialMs'
      | 'retryMaxMs'
      | 'requestTimeoutMs'
      | 'random'
    >
  > &
    CertificateManagerOptions;
  private readonly log: Logger;
  private cert: WorkloadCertificate | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  private fetching = false;
  private started = false;
  private stopped = false;
  private failures = 0;
  private watchedRoot: string | undefined;
  private readonly onRootFile = () => this.checkRoot();
  private readonly readyWaiters: Array<{
    resolve: (c: WorkloadCertificate) => void;
    reject: (e: Error) => void;
  }> = [];

  constructor(opts: CertificateManagerOptions) {
    super();
    this.opts = {
      caRootPath: DEFAULT_CA_ROOT_PATH,
      tokenPath: DEFAULT_TOKEN_PATH,
      keyType: 'ec-p256',
      rotationRatio: 0.8,
      rotationJitter: 0.05,
      retryInitialMs: 1000,
      retryMaxMs: 30_000,
      requestTimeoutMs: 10_000,
      random: Math.random,
      // An explicit `undefined` option means "default", not "unset".
      ...(Object.fromEntries(
        Object.entries(opts).filter(([, v]) => v !== undefined),
      ) as CertificateManagerOptions),
    };
    this.log = opts.log ?? createLogger('agent');
  }

  /** Starts fetching the first certificate (returns at once; see whenReady()). */
  start(): this {
    if (this.started) return this;
    this.started = true;
    this.schedule(0);
    const interval = this.opts.rootWatchIntervalMs ?? 10_000;
    if (this.opts.caRootPem === undefined && interval > 0) {
      this.watchedRoot = this.readRoot();
      // Polls stat (follows kubelet's ..data symlink swap); persistent: false keeps no process alive.
      watchFile(this.opts.caRootPath, { interval, persistent: false }, this.onRootFile);
    }
    return this;
  }

  private readRoot(): string | undefined {
    try {
      return readFileSync(this.opts.caRootPath, 'utf8');
    } catch {
      return undefined;
    }
  }

  private checkRoot(): void {
    const now = this.readRoot();
    if (now === undefined || now === this.watchedRoot) return;
    const first = this.watchedRoot === undefined;
    this.watchedRoot = now;
    if (first && !this.cert) return; // appeared before the first certificate: fetch uses it anyway
    this.log.info('mesh root changed; renewing the workload certificate', { path: this.opts.caRootPath });
    this.refresh();
  }

  /** Stops renewing; the current certificate stays readable. */
  stop(): void {
    this.stopped = true;
    unwatchFile(this.opts.caRootPath, this.onRootFile);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.readyWaiters.splice(0))
      w.reject(new Error('certificate manager stopped before ready'));
  }

  /** True once a certificate is held (the proxy reports ready only then). */
  get ready(): boolean {
    return this.cert !== undefined;
  }

  /** The certificate in service, or undefined before the first one arrived. */
  current(): WorkloadCertificate | undefined {
    return this.cert;
  }

  /** Resolves with the first certificate (at once if already held). */
  whenReady(): Promise<WorkloadCertificate> {
    if (this.cert) return Promise.resolve(this.cert);
    if (this.stopped) return Promise.reject(new Error('certificate manager stopped'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Renews now (e.g. after the mesh root changed), outside the schedule. */
  refresh(): void {
    if (!this.stopped) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    const due = Date.now() + delayMs;
    const arm = () => {
      const left = due - Date.now();
      this.timer = setTimeout(
        left > MAX_TIMER_MS ? arm : () => void this.renew(),
        Math.min(Math.max(left, 0), MAX_TIMER_MS),
      );
      this.timer.unref();
    };
    arm();
  }

  private async renew(): Promise<void> {
    if (this.stopped || this.fetching) return;
    this.fetching = true;
    try {
      const cert = await this.fetch();
      if (this.stopped) return;
      const initial = this.cert === undefined;
      this.cert = cert;
      this.failures = 0;
      const delay = rotationDelayMs({
        receivedAtMs: cert.receivedAt.getTime(),
        notAfterMs: cert.notAfter.getTime(),
        nowMs: Date.now(),
        ratio: this.opts.rotationRatio,
        jitter: this.opts.rotationJitter,
        random: this.opts.random(),
      });
      this.schedule(delay);
      this.log.info(initial ? 'workload certificate issued' : 'workload certificate rotated', {
        spiffeId: cert.spiffeId,
        notAfter: cert.notAfter.toISOString(),
        renewInMs: delay,
      });
      this.emit('certificate', cert, initial ? 'initial' : 'rotation');
      if (initial) {
        this.emit('ready', cert);
        for (const w of this.readyWaiters.splice(0)) w.resolve(cert);
      }
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const error = err instanceof Error ? err : new Error(String(err));
      const delay = backoffDelayMs(
        this.failures,
        this.opts.retryInitialMs,
        this.opts.retryMaxMs,
        this.opts.random(),
      );
      this.schedule(delay);
      this.log.warn('could not obtain a workload certificate; retrying', {
        error: error.message,
        attempt: this.failures,
        retryInMs: delay,
        holdingCertificateUntil: this.cert?.notAfter.toISOString(),
      });
      this.emit('fetch-failed', error, delay);
    } finally {
      this.fetching = false;
    }
  }

  private async fetch(): Promise<WorkloadCertificate> {
    const token = await readFile(this.opts.tokenPath, 'utf8').then(
      (t) => t.trim(),
      (err: NodeJS.ErrnoException) => {
        throw new Error(
          `cannot read the service-account token at ${this.opts.tokenPath}: ${err.code ?? err.message}`,
        );
      },
    );
    if (!token) throw new Error(`service-account token file ${this.opts.tokenPath} is empty`);
    const caRootPem =
      this.opts.caRootPem ??
      (await readFile(this.opts.caRootPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot read the mesh root at ${this.opts.caRootPath}: ${err.code ?? err.message}`);
      }));
    const key = await generateWorkloadKey(this.opts.keyType);
    const issued = await requestCertificate(
      {
        caAddress: this.opts.caAddress,
        caRootPem,
        timeoutMs: this.opts.requestTimeoutMs,
        ...(this.opts.caServerName ? { serverName: this.opts.caServerName } : {}),
      },
      token,
      createCsr(key),
      this.opts.validitySeconds,
    );
    return acceptCertificate(issued, key, new Date());
  }
}
