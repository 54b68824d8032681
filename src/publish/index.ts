/** Publishing compiled config into ConfigMaps (writer side) and reading it back (shared). */
export * from './assemble.js';
export * from './format.js';
export {
  type ClassResult,
  type DesiredConfigMap,
  exportScopes,
  MAX_CONFIGMAP_BYTES,
  type PublishPlan,
  planPublish,
} from './plan.js';
export { Publisher, type PublisherOptions, type PublisherStats } from './publisher.js';
export { saGroup, sidecarRole } from './rbac.js';
