/** Sidecar mode: capture listeners (15001/15006), passthrough by original destination, agent status. */
export { CaptureListener, readOriginalDst } from './capture-server.js';
export { CaptureTable, Via } from './capture-table.js';
export { capturedPort, setCaptured } from './captured.js';
export { SIDECAR_PORTS, Sidecar, type SidecarOptions, type SidecarPorts } from './sidecar.js';
export { workloadFromEnv } from './workload.js';
