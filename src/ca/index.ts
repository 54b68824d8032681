/**
 * The mesh CA as the controller runs it: load or create the root (Secrets `cacerts` /
 * `istio-ca-secret`), authenticate callers by TokenReview, serve `POST /v1/certificates` on
 * 15012. Given a watch connection (`rest`), it also publishes the root into every namespace
 * on Namespace/ConfigMap events (RootPublisher) and reloads `cacerts` when it changes.
 */
import type { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'winston';
import { CONTROLLER_SERVICE, DEFAULT_TRUST_DOMAIN, PORTS } from '../api/mesh.js';
import type { KubeRest } from '../config-source/kubernetes-rest.js';
import { describeApiError } from '../controller/kube.js';
import { webhookNames } from '../controller/webhook-certs.js';
import { createLogger } from '../util/log.js';
import { MeshCa } from './authority.js';
import { loadOrCreateCaBundle } from './ca-secret.js';
import { CacertsReloader } from './plugged-reload.js';
import {
  type PublishResult,
  publishRootCert,
  RootPublisher,
  type RootSync,
  startRootSync,
} from './root-publisher.js';
import { type CaServer, startCaServer } from './server.js';
import { kubeTokenReview, TokenAuthenticator } from './token-review.js';

export { DEFAULT_WORKLOAD_CERT_TTL_SECONDS, MAX_WORKLOAD_CERT_TTL_SECONDS, MeshCa } from './authority.js';
export { loadOrCreateCaBundle, PLUGGED_SECRET, SELF_SIGNED_SECRET } from './ca-secret.js';
export { CaError } from './errors.js';
export { CacertsReloader } from './plugged-reload.js';
export {
  publishRootCert,
  ROOT_CONFIGMAP,
  ROOT_CONFIGMAP_KEY,
  RootPublisher,
  startRootSync,
} from './root-publisher.js';
export { CERTIFICATES_PATH, startCaServer } from './server.js';
export { TokenAuthenticator } from './token-review.js';

export interface MeshCaServiceOptions {
  core: CoreV1Api;
  authn: AuthenticationV1Api;
  /** Control-plane namespace: where the CA Secrets live. */
  namespace: string;
  trustDomain?: string;
  port?: number;
  host?: string;
  /** Service whose DNS names the serving certificate carries (default isthmus-controller). */
  serviceName?: string;
  extraServingNames?: string[];
  defaultTtlSeconds?: number;
  maxTtlSeconds?: number;
  /**
   * Publish istio-ca-root-cert to every namespace by listing them at this interval (ms).
   * Unset: not at all (the caller publishes, e.g. from a namespace informer, via publishRoot).
   */
  rootSyncIntervalMs?: number;
  /**
   * Watch connection: publish the root on Namespace / ConfigMap events (RootPublisher) and
   * hot-reload `cacerts`. Takes precedence over rootSyncIntervalMs.
   */
  rest?: KubeRest;
  /** With `rest`: only the leader writes ConfigMaps (call kickRootPublisher on gaining it). */
  isLeader?: () => boolean;
  /** With `rest`: publish only into namespaces with these labels (tests). */
  namespaceLabelSelector?: string;
  /** With `rest`: safety-net pass over all namespaces (default 60 s). */
  rootResyncMs?: number;
  log?: Logger;
}

export interface RunningMeshCa {
  ca: MeshCa;
  server: CaServer;
  authenticator: TokenAuthenticator;
  /** Writes ConfigMap istio-ca-root-cert into each namespace (idempotent, never throws). */
  publishRoot(namespaces: Iterable<string>): Promise<PublishResult>;
  /** With `rest`: the watch-driven publisher and the `cacerts` reloader. */
  rootPublisher?: RootPublisher;
  reloader?: CacertsReloader;
  close(): Promise<void>;
}

export async function startMeshCa(opts: MeshCaServiceOptions): Promise<RunningMeshCa> {
  const log = opts.log ?? createLogger('ca');
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const bundle = await loadOrCreateCaBundle(opts.core, opts.namespace, { trustDomain });
  const ca = new MeshCa(bundle, {
    trustDomain,
    ...(opts.defaultTtlSeconds ? { defaultTtlSeconds: opts.defaultTtlSeconds } : {}),
    ...(opts.maxTtlSeconds ? { maxTtlSeconds: opts.maxTtlSeconds } : {}),
  });
  const authenticator = new TokenAuthenticator({ review: kubeTokenReview(opts.authn) });
  const server = await startCaServer({
    ca,
    authenticator,
    port: opts.port ?? PORTS.controlPlaneXds,
    ...(opts.host ? { host: opts.host } : {}),
    servingNames: [
      ...webhookNames(opts.serviceName ?? CONTROLLER_SERVICE, opts.namespace),
      ...(opts.extraServingNames ?? []),
    ],
    log,
  });
  let rootSync: RootSync | undefined;
  let rootPublisher: RootPublisher | undefined;
  let reloader: CacertsReloader | undefined;
  if (opts.rest) {
    rootPublisher = new RootPublisher({
      core: opts.core,
      rest: opts.rest,
      rootCertPem: () => ca.rootCertPem,
      ...(opts.isLeader ? { isLeader: opts.isLeader } : {}),
      ...(opts.namespaceLabelSelector ? { namespaceLabelSelector: opts.namespaceLabelSelector } : {}),
      ...(opts.rootResyncMs ? { resyncMs: opts.rootResyncMs } : {}),
      log,
    });
    const publisher = rootPublisher;
    reloader = new CacertsReloader({
      rest: opts.rest,
      namespace: opts.namespace,
      ca,
      log,
      onReload: () => publisher.kick(),
    });
    try {
      await Promise.all([rootPublisher.start(), reloader.start()]);
    } catch (err) {
      await Promise.all([rootPublisher.stop(), reloader.stop(), server.close()]);
      throw err;
    }
  } else if (opts.rootSyncIntervalMs) {
    rootSync = startRootSync(opts.core, () => ca.rootCertPem, {
      intervalMs: opts.rootSyncIntervalMs,
      onResult: (r) => {
        if (r.created.length || r.updated.length)
          log.info('published istio-ca-root-cert', { created: r.created, updated: r.updated });
        for (const f of r.failed) log.warn('could not publish istio-ca-root-cert', f);
      },
      onError: (err) =>
        log.warn('could not list namespaces to publish the root', { error: describeApiError(err) }),
    });
  }
  log.info('mesh CA serving', {
    port: server.port,
    source: bundle.source,
    trustDomain,
    caNotAfter: bundle.notAfter.toISOString(),
  });
  return {
    ca,
    server,
    authenticator,
    publishRoot: (namespaces) => publishRootCert(opts.core, namespaces, ca.rootCertPem),
    ...(rootPublisher ? { rootPublisher } : {}),
    ...(reloader ? { reloader } : {}),
    close: async () => {
      rootSync?.stop();
      await Promise.all([rootPublisher?.stop(), reloader?.stop()]);
      await server.close();
    },
  };
}
