// A real Kubernetes 1.20 control plane (etcd + kube-apiserver + kube-controller-manager) on
// 127.0.0.1, free ports and a fresh temp dir, for integration tests. No kubelet/scheduler: Pods
// are created as API objects but never run.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { generateControlPlaneCerts } from './certs.js';
import {
  freePorts,
  type ManagedProcess,
  removeOnExit,
  type StopOptions,
  sleep,
  spawnLogged,
  tailFile,
} from './process.js';
import { ensureProvisioned, k8sBinDir } from './provision.js';

export const DEFAULT_CONTROLLERS = [
  'serviceaccount',
  'serviceaccount-token',
  'endpoint',
  'endpointslice',
  'endpointslicemirroring',
  'namespace',
  'garbagecollector',
  'replicaset',
  'deployment',
  'job',
];

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** Audiences the apiserver accepts; `istio-ca` so istiod-style TokenReviews of projected tokens work. */
export const API_AUDIENCES = [SERVICE_ACCOUNT_ISSUER, 'istio-ca'];
export const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';

export interface ControlPlaneOptions {
  /** Directory with kube-apiserver and kube-controller-manager (default: the provision.sh cache). */
  binDir?: string;
  /** Parent of the temp dir (default: /dev/shm when present, so etcd's fsyncs are cheap). */
  baseDir?: string;
  /** kube-controller-manager --controllers (default: DEFAULT_CONTROLLERS). */
  controllers?: string[];
  extraApiserverArgs?: string[];
  extraControllerManagerArgs?: string[];
  /** Per-component start timeout (default 60s). */
  startTimeoutMs?: number;
  /** Keep the temp dir (logs, etcd data) after stop(). */
  keepDir?: boolean;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ControlPlane {
  /** Temp dir holding certs, kubeconfig, etcd data and the components' *.log files. */
  readonly dir: string;
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:<port>; stays the same across apiserver restarts. */
  readonly server: string;
  readonly port: number;
  /** Bearer token of `envtest-admin` (group system:masters). */
  readonly token: string;
  /** PEM of the CA that signed the apiserver serving cert (also the cluster's root CA). */
  readonly caPem: string;
  readonly etcdUrl: string;
  /** client-node config loaded from kubeconfigPath. */
  readonly kubeConfig: KubeConfig;
  readonly logs: { etcd: string; apiserver: string; controllerManager: string };
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<KubectlResult>;
  /** Raw GET against the apiserver as admin. */
  get(path: string): Promise<{ status: number; body: string }>;
  /**
   * Stops the apiserver (etcd and the controller-manager keep running). It stops listening at
   * once; open watches keep it alive, so it is SIGKILLed after `graceMs` (default 2s).
   * `{ signal: 'SIGKILL' }` simulates a crash.
   */
  stopApiserver(opts?: StopOptions): Promise<void>;
  /** Starts the apiserver again on the same port and etcd; resolves when /readyz is OK. */
  startApiserver(): Promise<void>;
  restartApiserver(opts?: StopOptions): Promise<void>;
  /** Kills everything, awaits exit and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

function httpsGet(
  url: string,
  token: string,
  ca: string,
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca, headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `check` until it returns true; fails early (with the log tail) if `proc` exits. */
async function waitUntil(
  what: string,
  proc: ManagedProcess,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (!proc.isRunning()) {
      throw new Error(
        `[envtest] ${proc.name} exited (${await proc.exited}) while waiting for ${what}; last lines of ${proc.logFile}:\n${tailFile(proc.logFile)}`,
      );
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(200);
  }
  throw new Error(
    `[envtest] timed out after ${timeoutMs}ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}; last lines of ${proc.logFile}:\n${tailFile(proc.logFile)}`,
  );
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const binDir = opts.binDir ?? k8sBinDir();
  await ensureProvisioned(binDir);
  const timeoutMs = opts.startTimeoutMs ?? 60_000;

  const baseDir = opts.baseDir ?? (process.platform === 'linux' ? '/dev/shm' : tmpdir());
  const dir = mkdtempSync(join(baseDir, 'isthmus-envtest-'));
  if (!opts.keepDir) removeOnExit(dir);
  const file = (name: string, content?: string): string => {
    const path = join(dir, name);
    if (content !== undefined) writeFileSync(path, content, { mode: 0o600 });
    return path;
  };

  const certs = generateControlPlaneCerts();
  const caFile = file('ca.crt', certs.caCert);
  const servingCertFile = file('apiserver.crt', certs.servingCert);
  const servingKeyFile = file('apiserver.key', certs.servingKey);
  const saPubFile = file('sa.pub', certs.saPublicKey);
  const saKeyFile = file('sa.key', certs.saPrivateKey);
  const token = randomBytes(24).toString('hex');
  const tokenFile = file('tokens.csv', `${token},envtest-admin,envtest-admin,"system:masters"\n`);

  const [etcdPort, etcdPeerPort, port] = (await freePorts(3)) as [number, number, number];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const server = `https://127.0.0.1:${port}`;
  const kubeconfigPath = file(
    'kubeconfig',
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'envtest',
          cluster: { server, 'certificate-authority-data': Buffer.from(certs.caCert).toString('base64') },
        },
      ],
      users: [{ name: 'envtest-admin', user: { token } }],
      contexts: [{ name: 'envtest', context: { cluster: 'envtest', user: 'envtest-admin' } }],
      'current-context': 'envtest',
    }),
  );
  const logs = {
    etcd: join(dir, 'etcd.log'),
    apiserver: join(dir, 'kube-apiserver.log'),
    controllerManager: join(dir, 'kube-controller-manager.log'),
  };

  const apiserverArgs = [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    '--insecure-port=0',
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--tls-cert-file=${servingCertFile}`,
    `--tls-private-key-file=${servingKeyFile}`,
    `--client-ca-file=${caFile}`,
    `--token-auth-file=${tokenFile}`,
    '--authorization-mode=RBAC',
    '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook',
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${saPubFile}`,
    `--service-account-signing-key-file=${saKeyFile}`,
    `--api-audiences=${API_AUDIENCES.join(',')}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
    '--kubelet-preferred-address-types=InternalIP',
    '--profiling=false',
    ...(opts.extraApiserverArgs ?? []),
  ];
  const controllerManagerArgs = [
    `--kubeconfig=${kubeconfigPath}`,
    `--controllers=${(opts.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
    `--root-ca-file=${caFile}`,
    `--service-account-private-key-file=${saKeyFile}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    '--secure-port=0',
    '--port=0',
    '--profiling=false',
    ...(opts.extraControllerManagerArgs ?? []),
  ];

  const api = (path: string) => httpsGet(`${server}${path}`, token, certs.caCert);
  let etcd: ManagedProcess | undefined;
  let apiserver: ManagedProcess | undefined;
  let controllerManager: ManagedProcess | undefined;

  let stopped = false;
  const startApiserver = async (): Promise<void> => {
    if (stopped) throw new Error('[envtest] control plane already stopped');
    if (apiserver?.isRunning()) return;
    const proc = spawnLogged('kube-apiserver', join(binDir, 'kube-apiserver'), apiserverArgs, logs.apiserver);
    apiserver = proc;
    await waitUntil(
      'kube-apiserver /readyz',
      proc,
      timeoutMs,
      async () => (await api('/readyz')).status === 200,
    );
  };
  const stopApiserver = async (stopOpts: StopOptions = {}): Promise<void> => {
    await apiserver?.stop({ graceMs: 2000, ...stopOpts });
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await controllerManager?.stop({ graceMs: 2000 });
    await stopApiserver();
    await etcd?.stop();
    if (!opts.keepDir) {
      rmSync(dir, { recursive: true, force: true });
      removeOnExit(dir, false);
    }
  };

  try {
    mkdirSync(join(dir, 'etcd'), { mode: 0o700 });
    etcd = spawnLogged(
      'etcd',
      'etcd',
      [
        '--name=envtest',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=envtest=http://127.0.0.1:${etcdPeerPort}`,
        '--logger=zap',
      ],
      logs.etcd,
    );
    const etcdProc = etcd;
    await waitUntil('etcd /health', etcdProc, timeoutMs, async () => {
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) });
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });

    await startApiserver();

    controllerManager = spawnLogged(
      'kube-controller-manager',
      join(binDir, 'kube-controller-manager'),
      controllerManagerArgs,
      logs.controllerManager,
    );
    // Pods in `default` need the default ServiceAccount and (in 1.20) its token secret.
    await waitUntil('the default ServiceAccount and its token', controllerManager, timeoutMs, async () => {
      const res = await api('/api/v1/namespaces/default/serviceaccounts/default');
      return (
        res.status === 200 && ((JSON.parse(res.body) as { secrets?: unknown[] }).secrets?.length ?? 0) > 0
      );
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  process.stderr.write(
    `[envtest] control plane up in ${((Date.now() - started) / 1000).toFixed(1)}s (${server}, dir ${dir})\n`,
  );

  return {
    dir,
    kubeconfigPath,
    server,
    port,
    token,
    caPem: certs.caCert,
    etcdUrl,
    kubeConfig,
    logs,
    kubectl: (args, kubectlOpts) => runKubectl(kubeconfigPath, args, kubectlOpts),
    get: api,
    stopApiserver,
    startApiserver,
    async restartApiserver(stopOpts) {
      await stopApiserver(stopOpts);
      await startApiserver();
    },
    stop,
  };
}

export function runKubectl(
  kubeconfigPath: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', [`--kubeconfig=${kubeconfigPath}`, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 30_000,
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
