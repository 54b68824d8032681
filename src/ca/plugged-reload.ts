/**
 * Hot reload of the operator's plug-in Secret `cacerts`: watched (Reflector: resumes after a
 * dropped watch, relists after 410 Gone), and when it is created or changed the CA signs with
 * the new material at once, without a restart. Material that does not load (missing key,
 * mismatched key, broken chain, expired) is refused with an error naming what is wrong and the
 * CA keeps signing with what it had. Deleting `cacerts` changes nothing until a restart (then
 * istio-ca-secret is used), as with istiod: falling back silently to another root would cut
 * every workload off.
 */
import { Reflector, type ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import type { KubeRest } from '../config-source/kubernetes-rest.js';
import type { MeshCa } from './authority.js';
import { loadCaBundle } from './bundle.js';
import { PLUGGED_SECRET, pluggedMaterial } from './ca-secret.js';

export interface CacertsReloaderOptions {
  rest: KubeRest;
  /** Control-plane namespace (where `cacerts` lives). */
  namespace: string;
  ca: MeshCa;
  /** Called after the CA switched material (republish the root). */
  onReload?: (info: { rootChanged: boolean }) => void;
  /** Called when a `cacerts` version is refused (the message names what is wrong). */
  onRefused?: (message: string) => void;
  log?: ReflectorLogger & { error?(msg: string, meta?: Record<string, unknown>): unknown };
  backoffMaxMs?: number;
}

export interface CacertsReloaderStats {
  reloads: number;
  refused: number;
  lastError?: string;
}

export class CacertsReloader {
  readonly stats: CacertsReloaderStats = { reloads: 0, refused: 0 };
  private readonly reflector: Reflector;
  /** resourceVersion of the last `cacerts` looked at (applied or refused). */
  private seen = '';

  constructor(private readonly opts: CacertsReloaderOptions) {
    this.reflector = new Reflector({
      rest: opts.rest,
      path: `/api/v1/namespaces/${opts.namespace}/secrets`,
      apiVersion: 'v1',
      kind: 'Secret',
      fieldSelector: `metadata.name=${PLUGGED_SECRET}`,
      ...(opts.backoffMaxMs ? { backoffMaxMs: opts.backoffMaxMs } : {}),
      ...(opts.log ? { log: opts.log } : {}),
      onChange: () => this.check(),
    });
  }

  start(): Promise<void> {
    return this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  private check(): void {
    const secret = this.reflector.store.get(`${this.opts.namespace}/${PLUGGED_SECRET}`);
    if (!secret) {
      if (this.seen && this.opts.ca.source === 'plugged')
        this.opts.log?.warn(
          `Secret ${this.opts.namespace}/${PLUGGED_SECRET} was deleted; the CA keeps signing with it until restarted`,
        );
      this.seen = '';
      return;
    }
    const rv = secret.metadata?.resourceVersion ?? '';
    if (rv && rv === this.seen) return;
    this.seen = rv;
    const ca = this.opts.ca;
    let bundle: ReturnType<typeof loadCaBundle>;
    try {
      bundle = loadCaBundle(pluggedMaterial((secret.data as Record<string, string>) ?? {}), 'plugged');
    } catch (err) {
      const message =
        `Secret ${this.opts.namespace}/${PLUGGED_SECRET} (resourceVersion ${rv}) refused: ` +
        `${(err as Error).message}; the CA keeps signing with its current ${ca.source} material`;
      this.stats.refused++;
      this.stats.lastError = message;
      (this.opts.log?.error ?? this.opts.log?.warn)?.call(this.opts.log, message);
      this.opts.onRefused?.(message);
      return;
    }
    if (
      bundle.signingCertPem === ca.signingCertPem &&
      ca.rootCertPem.startsWith(bundle.rootCertPem) &&
      ca.source === 'plugged'
    )
      return; // what the CA already signs with (e.g. the first list after start)
    const rootBefore = ca.rootCertPem;
    ca.setBundle(bundle);
    this.stats.reloads++;
    const rootChanged = ca.rootCertPem !== rootBefore;
    this.opts.log?.info(`CA now signs with Secret ${this.opts.namespace}/${PLUGGED_SECRET}`, {
      resourceVersion: rv,
      notAfter: bundle.notAfter.toISOString(),
      rootChanged,
    });
    this.opts.onReload?.({ rootChanged });
  }
}
