// One control plane shared by every integration test of a mocha run: started lazily by the first
// caller, stopped by the root hook in hooks.ts (and, as a backstop, killed by the process exit and
// signal handlers that process.ts installs).
// controlplane.js (and @kubernetes/client-node, ~2s to load) is imported lazily, so loading the
// root hooks costs unit-only runs nothing.
import type { ControlPlane, ControlPlaneOptions } from './controlplane.js';

/** Timeout for a hook that may have to provision (first build: 10-20 min) and start the control plane. */
export const CONTROL_PLANE_TIMEOUT_MS = 30 * 60 * 1000;

// Kept on globalThis: mocha may load this file twice (require() for --require'd hooks.ts and
// import() for spec files), and both copies must see the same control plane.
interface SharedState {
  controlPlane?: Promise<ControlPlane>;
}
const STATE_KEY = Symbol.for('isthmus.envtest.shared');
const globals = globalThis as unknown as Record<symbol, SharedState | undefined>;
globals[STATE_KEY] ??= {};
const state: SharedState = globals[STATE_KEY];

/**
 * The run-wide control plane; the first call starts it (options of later calls are ignored).
 * A failed start is remembered, so later suites fail fast with the same error.
 */
export function getSharedControlPlane(opts?: ControlPlaneOptions): Promise<ControlPlane> {
  state.controlPlane ??= import('./controlplane.js').then(({ startControlPlane }) => startControlPlane(opts));
  return state.controlPlane;
}

/** Stops the shared control plane if one was started. Safe to call more than once. */
export async function stopSharedControlPlane(): Promise<void> {
  const pending = state.controlPlane;
  state.controlPlane = undefined;
  if (!pending) return;
  const controlPlane = await pending.catch(() => undefined);
  await controlPlane?.stop();
}

/**
 * For use inside a describe(): registers a before() hook (with a timeout long enough to
 * provision) that obtains the shared control plane, and returns a getter for the tests.
 */
export function useSharedControlPlane(opts?: ControlPlaneOptions): () => ControlPlane {
  let controlPlane: ControlPlane | undefined;
  before(async function () {
    this.timeout(CONTROL_PLANE_TIMEOUT_MS);
    controlPlane = await getSharedControlPlane(opts);
  });
  return () => {
    if (!controlPlane) throw new Error('[envtest] control plane not started (did the before() hook fail?)');
    return controlPlane;
  };
}
