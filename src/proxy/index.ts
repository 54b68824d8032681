/** The sidecar proxy's public surface. */

export { Flag, flagsString } from './flags.js';
export type { ListenerBindOptions } from './http/listeners.js';
export { type ApplyResult, type ProxyOptions, SidecarProxy } from './proxy.js';
