/**
 * `isthmus controller`: one process for the control plane. This session it serves the
 * admission webhooks (with a self-managed serving certificate) and keeps their registration
 * current; the reconcile loop, CA and config push join it in later stages.
 */
import {
  AdmissionregistrationV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  VersionApi,
} from '@kubernetes/client-node';
import { CONTROLLER_SERVICE } from '../api/mesh.js';
import { type RunningMeshCa, startMeshCa } from '../ca/index.js';
import { restFromKubeConfig } from '../config-source/kubernetes-rest.js';
import { defaultInjectContext, injectAdmission } from '../inject/index.js';
import type { Pod } from '../inject/types.js';
import { createLogger } from '../util/log.js';
import { type AdmissionHandler, type AdmissionServer, startAdmissionServer } from '../webhook/server.js';
import { validateAdmission } from '../webhook/validate-handler.js';
import { describeApiError, loadKubeConfig } from './kube.js';
import { LeaderElector } from './leader.js';
import { type RunningReconciler, startReconciler } from './reconcile.js';
import { ensureWebhookCerts, webhookNames } from './webhook-certs.js';
import { registerWebhooks } from './webhook-registration.js';

const CERT_SECRET = 'isthmus-webhook-certs';
const REGISTRATION_INTERVAL_MS = 30_000;
/** Lease of the root publisher (istiod: istio-namespace-controller-election), apart from the reconciler's. */
const ROOT_PUBLISHER_LEASE = 'isthmus-namespace-controller';

export interface ControllerOptions {
  kubeconfig?: string;
  namespace: string;
  rootNamespace: string;
  webhookPort: number;
  webhookHost?: string;
  /** Register webhooks by URL (out-of-cluster runs), e.g. https://127.0.0.1:15017 */
  webhookUrl?: string;
  register: boolean;
  /** Image injected as sidecar and init container (default: this release's image). */
  proxyImage?: string;
  /** Serve the mesh CA (POST /v1/certificates) on this port (15012 in-cluster); unset = no CA. */
  caPort?: number;
  /** Run the reconcile loop (informers -> compile -> publish ConfigMaps). */
  reconcile?: boolean;
  /**
   * Hold a Lease before writing (default true): one for the reconcile loop, one for the CA's
   * istio-ca-root-cert publisher. `false` = this replica writes unconditionally (one replica only).
   */
  leaderElection?: boolean;
}

export interface RunningController {
  admission: AdmissionServer;
  ca?: RunningMeshCa;
  reconciler?: RunningReconciler;
  stop(): Promise<void>;
}

export async function runController(opts: ControllerOptions): Promise<RunningController> {
  const log = createLogger('controller');
  const kc = loadKubeConfig(opts.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const admissionApi = kc.makeApiClient(AdmissionregistrationV1Api);

  const clusterVersion = await kc
    .makeApiClient(VersionApi)
    .getCode()
    .then((v) => v.gitVersion)
    .catch(() => undefined);
  const injectContext = defaultInjectContext({
    controlPlaneNamespace: opts.namespace,
    clusterVersion,
    ...(opts.proxyImage ? { proxyImage: opts.proxyImage } : {}),
  });
  const inject: AdmissionHandler = (req) => {
    if (req.operation !== 'CREATE' || req.kind.kind !== 'Pod') return { allowed: true };
    // The webhook's namespaceSelector already chose the namespace; pods made by controllers
    // often have no metadata.namespace, so the request's namespace is the one to use.
    return injectAdmission(
      req.object as Pod,
      undefined,
      injectContext,
      req.namespace ? { namespace: req.namespace } : {},
    );
  };

  // The apiserver may not be reachable yet (it starts alongside us): retry with backoff.
  const certs = await retry('store the webhook certificate', log, () =>
    ensureWebhookCerts(core, opts.namespace, CERT_SECRET, webhookNames(CONTROLLER_SERVICE, opts.namespace)),
  );
  const admission = await startAdmissionServer({
    port: opts.webhookPort,
    ...(opts.webhookHost ? { host: opts.webhookHost } : {}),
    cert: `${certs.certPem}`,
    key: certs.keyPem,
    handlers: {
      '/validate': (req) => validateAdmission(req, { rootNamespace: opts.rootNamespace }),
      '/inject': inject,
    },
    onError: (err) =>
      log.error('admission handler failed', { error: err instanceof Error ? err.stack : String(err) }),
  });
  log.info('admission webhooks serving', {
    port: admission.port,
    clusterVersion,
    proxyImage: injectContext.proxyImage,
  });

  let timer: NodeJS.Timeout | undefined;
  const reconcileRegistration = async () => {
    try {
      const written = await registerWebhooks(admissionApi, {
        caCertPem: certs.caCertPem,
        namespace: opts.namespace,
        ...(opts.webhookUrl ? { urlBase: opts.webhookUrl } : {}),
      });
      if (written.length) log.info('webhook configurations registered', { names: written });
    } catch (err) {
      log.warn('webhook registration failed; will retry', { error: describeApiError(err) });
    }
  };
  if (opts.register) {
    await reconcileRegistration();
    timer = setInterval(reconcileRegistration, REGISTRATION_INTERVAL_MS);
    timer.unref();
  }
  // The CA (after registration, so a broken `cacerts` never holds up the webhooks): root from
  // Secret cacerts (hot-reloaded) / istio-ca-secret; istio-ca-root-cert published on Namespace
  // and ConfigMap watch events, by the holder of its own Lease when leader election is on.
  let rootElector: LeaderElector | undefined;
  const ca =
    opts.caPort === undefined
      ? undefined
      : await retry('start the mesh CA', log, () => {
          const rest = restFromKubeConfig(kc, 'isthmus-controller');
          if (opts.leaderElection !== false)
            rootElector ??= new LeaderElector({
              rest,
              namespace: opts.namespace,
              name: ROOT_PUBLISHER_LEASE,
              onStartedLeading: () => ca?.rootPublisher?.kick(),
              log,
            });
          const elector = rootElector;
          return startMeshCa({
            core,
            authn: kc.makeApiClient(AuthenticationV1Api),
            rest,
            namespace: opts.namespace,
            port: opts.caPort!,
            ...(opts.webhookHost ? { host: opts.webhookHost } : {}),
            ...(elector ? { isLeader: () => elector.isLeader() } : {}),
          });
        });
  rootElector?.start();

  const reconciler = opts.reconcile
    ? await retry('start the reconcile loop', log, () =>
        startReconciler({
          rest: restFromKubeConfig(kc, 'isthmus-controller'),
          namespace: opts.namespace,
          rootNamespace: opts.rootNamespace,
          leaderElection: opts.leaderElection !== false,
          log,
        }),
      )
    : undefined;

  return {
    admission,
    ...(ca ? { ca } : {}),
    ...(reconciler ? { reconciler } : {}),
    async stop() {
      if (timer) clearInterval(timer);
      await reconciler?.stop();
      await rootElector?.stop();
      await ca?.close();
      await admission.close();
    },
  };
}

async function retry<T>(
  what: string,
  log: ReturnType<typeof createLogger>,
  fn: () => Promise<T>,
): Promise<T> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 10_000)) {
    try {
      return await fn();
    } catch (err) {
      log.warn(`could not ${what}; retrying in ${delay} ms`, { error: describeApiError(err) });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
