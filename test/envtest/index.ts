// Real-Kubernetes test harness ("envtest"). Integration suites put `@integration` in their
// describe() title and call useSharedControlPlane() (or getSharedControlPlane()).
export type { ControlPlane, ControlPlaneOptions, KubectlResult } from './controlplane.js';
export {
  API_AUDIENCES,
  DEFAULT_CONTROLLERS,
  runKubectl,
  SERVICE_ACCOUNT_ISSUER,
  SERVICE_CLUSTER_IP_RANGE,
  startControlPlane,
} from './controlplane.js';
export type { StopOptions } from './process.js';
export { ensureProvisioned, k8sBinDir, k8sCacheDir } from './provision.js';
export {
  CONTROL_PLANE_TIMEOUT_MS,
  getSharedControlPlane,
  stopSharedControlPlane,
  useSharedControlPlane,
} from './shared.js';
