/**
 * The RBAC objects that let sidecars read their own config and nothing else: per workload
 * namespace a Role `isthmus-sidecar` (get/list/watch on exactly the namespace's tables
 * ConfigMaps by resourceNames, patch on its status ConfigMaps) bound to the group of the
 * namespace's service accounts; in the controller namespace a Role
 * `isthmus-sidecar-endpoints` on the endpoint shards, bound to the same groups.
 *
 * resourceNames and list/watch: the apiserver takes the name of a list or watch from a
 * `fieldSelector=metadata.name=<name>` (RequestInfo, since Kubernetes 1.9), so an agent that
 * lists/watches each ConfigMap by name is authorized by these Roles; a plain list of the
 * namespace's ConfigMaps is denied (403), as is a get of any other name.
 */
import { MANAGED_BY, MANAGED_BY_LABEL } from './format.js';

const RBAC = 'rbac.authorization.k8s.io';

export interface RoleObjects {
  role: Record<string, unknown>;
  binding: Record<string, unknown>;
}

export function saGroup(namespace: string): string {
  return `system:serviceaccounts:${namespace}`;
}

function meta(name: string, namespace: string) {
  return { name, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } };
}

export function sidecarRole(
  name: string,
  namespace: string,
  read: readonly string[],
  patch: readonly string[],
  subjectNamespaces: readonly string[],
): RoleObjects {
  const rules: Array<Record<string, unknown>> = [];
  // An empty resourceNames list means "all": never emit one.
  if (read.length)
    rules.push({
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['get', 'list', 'watch'],
      resourceNames: [...new Set(read)].sort(),
    });
  if (patch.length)
    rules.push({
      apiGroups: [''],
      resources: ['configmaps'],
      verbs: ['patch'],
      resourceNames: [...new Set(patch)].sort(),
    });
  return {
    role: { apiVersion: `${RBAC}/v1`, kind: 'Role', metadata: meta(name, namespace), rules },
    binding: {
      apiVersion: `${RBAC}/v1`,
      kind: 'RoleBinding',
      metadata: meta(name, namespace),
      roleRef: { apiGroup: RBAC, kind: 'Role', name },
      subjects: [...new Set(subjectNamespaces)]
        .sort()
        .map((ns) => ({ apiGroup: RBAC, kind: 'Group', name: saGroup(ns) })),
    },
  };
}
