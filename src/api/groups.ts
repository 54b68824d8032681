/** API groups and versions of the mesh kinds, exactly as Istio serves them. */
export const NETWORKING_GROUP = 'networking.istio.io';
export const SECURITY_GROUP = 'security.istio.io';

/** Served versions; the first one is the storage version. Istio stores v1 since 1.22. */
export const NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;
export const SECURITY_VERSIONS = ['v1', 'v1beta1'] as const;
