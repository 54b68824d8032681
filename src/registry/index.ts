/** The service registry model (pure): Kubernetes objects + ServiceEntries -> MeshSnapshot. */
export * from './hash.js';
export * from './host.js';
export { endpointsFromKube, serviceFromKube, workloadNameOf } from './kubernetes.js';
export * from './protocol.js';
export * from './scope.js';
export { servicesFromServiceEntry } from './service-entry.js';
export * from './snapshot.js';
export * from './types.js';
export * from './visibility.js';
export * from './workloads.js';
