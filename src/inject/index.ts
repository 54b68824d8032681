/** Public surface of sidecar injection, shared by the admission server and `isthmus kube-inject`. */
export { type AdmissionInjectResult, admissionResponse, injectAdmission } from './admission.js';
export * from './constants.js';
export { defaultInjectContext, isthmusVersion } from './context.js';
export { injectPod } from './inject.js';
export { KubeInjectError, type KubeInjectResult, kubeInject } from './kube-inject.js';
export {
  BUNDLED_TEMPLATE_PATH,
  loadSidecarTemplate,
  parseSidecarTemplate,
  renderTemplate,
  type SidecarTemplate,
  TemplateError,
} from './template.js';
export type * from './types.js';
