/** Local mode (`isthmus up`): a whole mesh on one machine, sidecars in explicit-proxy mode. */
export { canBind, freePort, LoopbackAllocator } from './addresses.js';
export { type LocalManifests, type LocalWorkload, manifestsPath, readManifests } from './manifests.js';
export { LocalMesh, type UpOptions } from './mesh.js';
export { baseSnapshot, overlaySnapshot, podObject } from './pods.js';
