/** Traffic capture: istio-iptables-compatible flags, rule generation, applying, original dst. */
export { type ApplyResult, applyCapture, findBackend, IptablesApplyError, removeCapture } from './apply.js';
export {
  CaptureFlagError,
  type CaptureFlags,
  type CaptureOptions,
  DEFAULT_FLAGS,
  parseCaptureFlags,
} from './options.js';
export { getOriginalDst, getOriginalDstFd, type OriginalDst } from './original-dst.js';
export { captureRules, type Family, OWNED_CHAINS, renderRestoreInput } from './rules.js';
