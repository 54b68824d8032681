/** Builds the mesh values injection renders with; the installation overrides what it changes. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_INIT_RESOURCES, DEFAULT_PROXY_RESOURCES, PORTS } from './constants.js';
import type { InjectContext } from './types.js';

export const DEFAULT_IMAGE_REPOSITORY = 'docker.io/isthmus/isthmus';
export {
  CONTROLLER_SERVICE,
  DEFAULT_ROOT_NAMESPACE as DEFAULT_CONTROL_PLANE_NAMESPACE,
} from '../api/mesh.js';

import {
  CONTROLLER_SERVICE,
  DEFAULT_ROOT_NAMESPACE as DEFAULT_CONTROL_PLANE_NAMESPACE,
} from '../api/mesh.js';

let cachedVersion: string | undefined;

/** The package version, so the default proxy image matches the control plane that injects it. */
export function isthmusVersion(): string {
  if (cachedVersion) return cachedVersion;
  try {
    // Two levels up from src/inject (tsx) and dist/inject (build) alike.
    const pkgPath = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json');
    const pkg: unknown = JSON.parse(readFileSync(pkgPath, 'utf8'));
    const v = (pkg as { version?: unknown }).version;
    cachedVersion = typeof v === 'string' ? v : 'latest';
  } catch {
    cachedVersion = 'latest';
  }
  return cachedVersion;
}

export function defaultInjectContext(overrides: Partial<InjectContext> = {}): InjectContext {
  const ns = overrides.controlPlaneNamespace ?? DEFAULT_CONTROL_PLANE_NAMESPACE;
  const controlPlane = `${CONTROLLER_SERVICE}.${ns}.svc:${PORTS.controlPlaneXds}`;
  return {
    proxyImage: `${DEFAULT_IMAGE_REPOSITORY}:${isthmusVersion()}`,
    imagePullPolicy: 'IfNotPresent',
    controlPlaneNamespace: ns,
    clusterVersion: undefined,
    nativeSidecars: undefined,
    trustDomain: 'cluster.local',
    clusterDomain: 'cluster.local',
    clusterId: 'Kubernetes',
    caAddress: controlPlane,
    discoveryAddress: controlPlane,
    revision: 'default',
    includeOutboundIPRanges: '*',
    excludeOutboundIPRanges: '',
    excludeInboundPorts: '',
    excludeOutboundPorts: '',
    interceptionMode: 'REDIRECT',
    logLevel: 'warning',
    rewriteAppHTTPProbes: true,
    holdApplicationUntilProxyStarts: false,
    proxyResources: structuredClone(DEFAULT_PROXY_RESOURCES) as InjectContext['proxyResources'],
    initResources: structuredClone(DEFAULT_INIT_RESOURCES) as InjectContext['initResources'],
    template: undefined,
    ...overrides,
  };
}
