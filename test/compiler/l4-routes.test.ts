/**
 * VirtualService `tls` and `tcp` rules compiled to listener `l4Routes`: SNI routes of an
 * external TLS ServiceEntry and of an in-mesh tls port, weighted and subnet-matched tcp
 * routes, per-workload sourceLabels, and the defaults when nothing matches.
 */
import { expect } from 'chai';
import { parseDocuments } from '../../src/cli/documents.js';
import { compileForWorkload } from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import type { MeshSettings, MeshSnapshot, WorkloadIdentity } from '../../src/registry/types.js';
import { workloadsFromPods } from '../../src/registry/workloads.js';
import { formatErrors, type Listener, validateTables } from '../../src/tables/index.js';

const YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api-example, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: auth-example, namespace: shop}
spec:
  hosts: [auth.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-example, namespace: shop}
spec:
  hosts: [api.example.com]
  tls:
  - match: [{sniHosts: [api.example.com], port: 443}]
    route: [{destination: {host: api.example.com}}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: 10.96.4.1
  selector: {app: db}
  ports: [{name: tcp-pg, port: 5432}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: shop}
spec:
  host: db
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: shop}
spec:
  hosts: [db]
  tcp:
  - match: [{sourceLabels: {app: canary}}]
    route: [{destination: {host: db, subset: v2}}]
  - match: [{destinationSubnets: [10.96.0.0/16], port: 5432}, {destinationSubnets: [10.97.0.1]}]
    route:
    - {destination: {host: db, subset: v1}, weight: 90}
    - {destination: {host: db, subset: v2}, weight: 10}
  - route:
    - {destination: {host: db, subset: v1}, weight: 75}
    - {destination: {host: db, subset: v2}, weight: 25}
---
apiVersion: v1
kind: Service
metadata: {name: vault, namespace: shop}
spec:
  clusterIP: 10.96.4.2
  selector: {app: vault}
  ports: [{name: tls-api, port: 8200}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: vault, namespace: shop}
spec:
  host: vault
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vault, namespace: shop}
spec:
  hosts: [vault.shop.svc.cluster.local, "*.vault.example.com"]
  tls:
  - match: [{sniHosts: [vault.shop.svc.cluster.local, "*.vault.example.com"], sourceLabels: {app: api}}]
    route: [{destination: {host: vault, subset: v1}}]
  - match: [{sniHosts: [vault.shop.svc.cluster.local], port: 9999}]
    route: [{destination: {host: vault}}]
  tcp:
  - route: [{destination: {host: vault, subset: v1}}]
---
${['api', 'canary', 'other']
  .map(
    (app) => `apiVersion: v1
kind: Pod
metadata: {name: ${app}-1, namespace: shop, labels: {app: ${app}}}
spec: {containers: [{name: app, image: example/app}]}
status: {podIP: 10.1.7.${app.length}}
`,
  )
  .join('---\n')}`;

const DB_V1 = 'outbound|5432|v1|db.shop.svc.cluster.local';
const DB_V2 = 'outbound|5432|v2|db.shop.svc.cluster.local';
const VAULT = 'outbound|8200||vault.shop.svc.cluster.local';
const VAULT_V1 = 'outbound|8200|v1|vault.shop.svc.cluster.local';

function setup(mesh: Partial<MeshSettings> = {}): {
  snap: MeshSnapshot;
  workloads: Map<string, WorkloadIdentity>;
} {
  const loaded = { docs: [] as { source: string; object: unknown }[], errors: [] as string[] };
  parseDocuments(YAML, 'l4.yaml', loaded);
  expect(loaded.errors).to.deep.equal([]);
  const objects = loaded.docs.map((d) => d.object);
  const workloads = new Map(workloadsFromPods(objects).map((w) => [w.name, w]));
  return { snap: buildSnapshot(objects, mesh), workloads };
}

function listenersFor(snap: MeshSnapshot, w: WorkloadIdentity): Map<string, Listener> {
  const r = compileForWorkload(snap, w);
  const v = validateTables(r.tables);
  expect(v.ok, v.ok ? '' : formatErrors(v.errors)).to.equal(true);
  return new Map(r.tables.listeners.map((l) => [l.name, l]));
}

describe('compiler: VirtualService tls/tcp -> listener l4Routes', () => {
  const { snap, workloads } = setup();
  const api = listenersFor(snap, workloads.get('api-1')!);

  it('routes external TLS ServiceEntries on one 0.0.0.0 port by SNI; unknown SNI passes through (ALLOW_ANY)', () => {
    // api.example.com by its VirtualService tls route, auth.example.com (no VirtualService)
    // by its host name, as Istio's filter chains of address-less TLS services.
    expect(api.get('0.0.0.0_443')).to.deep.equal({
      name: '0.0.0.0_443',
      direction: 'outbound',
      port: 443,
      address: '0.0.0.0',
      protocol: 'tls',
      cluster: 'PassthroughCluster',
      l4Routes: [
        {
          name: 'shop/api-example.tls[0]',
          match: { sniHosts: ['api.example.com'] },
          clusters: [{ cluster: 'outbound|443||api.example.com', weight: 100 }],
        },
        {
          match: { sniHosts: ['auth.example.com'] },
          clusters: [{ cluster: 'outbound|443||auth.example.com', weight: 100 }],
        },
      ],
    });
    expect(compileForWorkload(snap, workloads.get('api-1')!).warnings).to.deep.equal([]);
  });

  it('routes an in-mesh tls port by SNI (exact and wildcard), sourceLabels and port decided per workload', () => {
    // The second tls rule is for port 9999 and does not apply; `tcp` rules do not apply to tls
    // ports; a VIP-bound listener has no default (unmatched SNI is closed, as Envoy does).
    expect(api.get('10.96.4.2_8200')).to.deep.equal({
      name: '10.96.4.2_8200',
      direction: 'outbound',
      port: 8200,
      address: '10.96.4.2',
      protocol: 'tls',
      l4Routes: [
        {
          name: 'shop/vault.tls[0]',
          match: { sniHosts: ['vault.shop.svc.cluster.local', '*.vault.example.com'] },
          clusters: [{ cluster: VAULT_V1, weight: 100 }],
        },
      ],
    });
    // Another workload: no tls match applies, so the whole port goes to the service.
    const other = listenersFor(snap, workloads.get('other-1')!);
    expect(other.get('10.96.4.2_8200')?.cluster).to.equal(VAULT);
    expect(other.get('10.96.4.2_8200')?.l4Routes).to.equal(undefined);
  });

  it('compiles tcp subnet matches to a route and a weighted catch-all to a last route without match', () => {
    expect(api.get('10.96.4.1_5432')).to.deep.equal({
      name: '10.96.4.1_5432',
      direction: 'outbound',
      port: 5432,
      address: '10.96.4.1',
      protocol: 'tcp',
      l4Routes: [
        {
          name: 'shop/db.tcp[1]',
          match: { destinationSubnets: ['10.96.0.0/16', '10.97.0.1'] },
          clusters: [
            { cluster: DB_V1, weight: 90 },
            { cluster: DB_V2, weight: 10 },
          ],
        },
        {
          name: 'shop/db.tcp',
          clusters: [
            { cluster: DB_V1, weight: 75 },
            { cluster: DB_V2, weight: 25 },
          ],
        },
      ],
    });
  });

  it('stops at the first applicable catch-all tcp rule (sourceLabels) and makes it the listener cluster', () => {
    const canary = listenersFor(snap, workloads.get('canary-1')!);
    const db = canary.get('10.96.4.1_5432')!;
    expect(db.cluster).to.equal(DB_V2);
    expect(db.l4Routes).to.equal(undefined);
  });

  it('closes unmatched SNI on a 0.0.0.0 tls listener under REGISTRY_ONLY (no default cluster)', () => {
    const strict = setup({ outboundTrafficPolicy: 'REGISTRY_ONLY' });
    const l = listenersFor(strict.snap, strict.workloads.get('api-1')!).get('0.0.0.0_443')!;
    expect(l.cluster).to.equal(undefined);
    expect(l.l4Routes?.map((r) => r.match?.sniHosts)).to.deep.equal([
      ['api.example.com'],
      ['auth.example.com'],
    ]);
  });
});
