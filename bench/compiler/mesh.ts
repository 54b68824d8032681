/**
 * Synthetic mesh for the compiler benchmark: plain Kubernetes/Istio objects, as a config
 * source would deliver them. Deterministic (no randomness) so runs are comparable.
 */
import type { WorkloadIdentity } from '../../src/registry/types.js';

export interface MeshShape {
  namespaces: number;
  services: number;
  endpointsPerService: number;
  workloads: number;
  labelSets: number;
  virtualServices: number;
  destinationRules: number;
  /** Share of VirtualServices with a sourceLabels-scoped rule. */
  sourceScopedShare: number;
  /** Give every namespace a Sidecar limiting egress to itself + istio-system. */
  sidecars: boolean;
}

export const ISSUE_SHAPE: MeshShape = {
  namespaces: 10,
  services: 1000,
  endpointsPerService: 10,
  workloads: 2000,
  labelSets: 200,
  virtualServices: 300,
  destinationRules: 300,
  sourceScopedShare: 0.1,
  sidecars: false,
};

const ns = (i: number) => `ns-${i}`;

export function syntheticMesh(shape: MeshShape): { objects: unknown[]; workloads: WorkloadIdentity[] } {
  const objects: unknown[] = [];
  const perNs = Math.ceil(shape.services / shape.namespaces);
  for (let s = 0; s < shape.services; s++) {
    const namespace = ns(s % shape.namespaces);
    const name = `svc-${s}`;
    const ports = [{ name: 'http', port: 8080, targetPort: 8080 }];
    if (s % 10 === 0) ports.push({ name: 'grpc-api', port: 9090, targetPort: 9090 });
    objects.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { clusterIP: `10.96.${s >> 8}.${s & 255}`, selector: { app: name }, ports },
    });
    const endpoints = [];
    for (let e = 0; e < shape.endpointsPerService; e++) {
      const id = s * shape.endpointsPerService + e;
      const podName = `${name}-${e % 2 ? 'v2' : 'v1'}-${e}`;
      objects.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: podName,
          namespace,
          labels: { app: name, version: e % 2 ? 'v2' : 'v1', 'security.istio.io/tlsMode': 'istio' },
        },
        spec: { serviceAccountName: name, nodeName: `node-${id % 50}`, containers: [{ name: 'app' }] },
        status: { podIP: `10.${1 + (id >> 16)}.${(id >> 8) & 255}.${id & 255}` },
      });
      endpoints.push({
        addresses: [`10.${1 + (id >> 16)}.${(id >> 8) & 255}.${id & 255}`],
        conditions: { ready: true },
        nodeName: `node-${id % 50}`,
        targetRef: { kind: 'Pod', namespace, name: podName },
      });
    }
    objects.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-x`, namespace, labels: { 'kubernetes.io/service-name': name } },
      ports: ports.map((p) => ({ name: p.name, port: p.targetPort })),
      endpoints,
    });
  }
  for (let n = 0; n < 50; n++)
    objects.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: `node-${n}`,
        labels: { 'topology.kubernetes.io/region': 'r1', 'topology.kubernetes.io/zone': `z${n % 3}` },
      },
    });
  for (let v = 0; v < shape.virtualServices; v++) {
    const s = (v * 7) % shape.services;
    const namespace = ns(s % shape.namespaces);
    const host = `svc-${s}`;
    const scoped = v < shape.virtualServices * shape.sourceScopedShare;
    objects.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: `vs-${v}`, namespace },
      spec: {
        hosts: [host],
        http: [
          {
            match: [
              {
                headers: { 'end-user': { exact: 'jason' } },
                ...(scoped ? { sourceLabels: { app: `svc-${(s + 1) % perNs}` } } : {}),
              },
            ],
            route: [{ destination: { host, subset: 'v2' } }],
          },
          {
            timeout: '3s',
            retries: { attempts: 3, perTryTimeout: '1s' },
            route: [
              { destination: { host, subset: 'v1' }, weight: 90 },
              { destination: { host, subset: 'v2' }, weight: 10 },
            ],
          },
        ],
      },
    });
  }
  for (let d = 0; d < shape.destinationRules; d++) {
    const s = (d * 7) % shape.services;
    objects.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `dr-${d}`, namespace: ns(s % shape.namespaces) },
      spec: {
        host: `svc-${s}`,
        trafficPolicy: {
          connectionPool: { http: { http1MaxPendingRequests: 100 } },
          outlierDetection: { consecutive5xxErrors: 5 },
        },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          {
            name: 'v2',
            labels: { version: 'v2' },
            trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
          },
        ],
      },
    });
  }
  if (shape.sidecars)
    for (let n = 0; n < shape.namespaces; n++)
      objects.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: { name: 'default', namespace: ns(n) },
        spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] },
      });
  // 2000 workloads over 200 label sets (distinct namespace + labels): 10 identities per set, as
  // the controller would see 10 pods of one Deployment before grouping them.
  const workloads: WorkloadIdentity[] = [];
  for (let w = 0; w < shape.workloads; w++) {
    const set = w % shape.labelSets;
    // Spread label sets over every namespace: service s lives in namespace s % namespaces.
    const s = (set * shape.namespaces + (set % shape.namespaces)) % shape.services;
    const version = set < shape.labelSets / 2 ? 'v1' : 'v2';
    workloads.push({
      name: `svc-${s}-${version}`,
      namespace: ns(s % shape.namespaces),
      labels: { app: `svc-${s}`, version },
      serviceAccount: `svc-${s}`,
    });
  }
  return { objects, workloads };
}
