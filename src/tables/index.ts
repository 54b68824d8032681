/**
 * The compiled-config contract between the control plane (compiler) and the proxy.
 * Versioned by `apiVersion`; the proxy reads nothing else (never raw Istio YAML).
 */
export * from './clusters.js';
export * from './l4-routes.js';
export * from './listeners.js';
export * from './match.js';
export * from './names.js';
export {
  compileAnchored,
  compileForReplace,
  MAX_REGEX_LENGTH,
  type Re2,
  toReplaceTemplate,
} from './regex.js';
export * from './routes.js';
export * from './security.js';
export * from './tables.js';
export * from './telemetry.js';
export * from './tls.js';
export {
  formatErrors,
  type TableError,
  type Validated,
  validateEndpoints,
  validateTables,
} from './validate.js';
