/** The sidecar agent's certificate part: workload key, CSR, issuance and rotation. */
export { acceptCertificate, CertificateRejectedError, type WorkloadCertificate } from './accept.js';
export { CaRequestError, requestCertificate } from './ca-client.js';
export {
  CertificateManager,
  type CertificateManagerEvents,
  type CertificateManagerOptions,
  DEFAULT_CA_ROOT_PATH,
  DEFAULT_TOKEN_PATH,
} from './certificate-manager.js';
export { backoffDelayMs, rotationDelayMs } from './rotation.js';
