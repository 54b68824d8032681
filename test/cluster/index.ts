// Real single-node Kubernetes for end-to-end tests (see cluster.ts). Suites put `@integration` in
// their describe() title and use getSharedCluster().
export type { Cluster, ClusterOptions } from './cluster.js';
export { NODE_CONTROLLERS, startCluster } from './cluster.js';
export { CLUSTER_DOMAIN, GATEWAY_IP, IMAGES, POD_CIDR, SERVICE_CIDR } from './config.js';
export { installMesh, MESH_NAMESPACE } from './mesh.js';
export { CLUSTER_TIMEOUT_MS, getSharedCluster, stopSharedCluster } from './shared.js';
