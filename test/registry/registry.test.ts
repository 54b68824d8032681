import { expect } from 'chai';
import { hostSubsetOf, mostSpecificMatch, resolveShortName } from '../../src/registry/host.js';
import { protocolOfPort } from '../../src/registry/protocol.js';
import { scopeFor } from '../../src/registry/scope.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import { isExportedTo } from '../../src/registry/visibility.js';
import { workloadsFromPods } from '../../src/registry/workloads.js';

describe('registry', () => {
  it('reads protocols from port names and appProtocol as Istio does', () => {
    expect(protocolOfPort('http')).to.equal('HTTP');
    expect(protocolOfPort('http-web')).to.equal('HTTP');
    expect(protocolOfPort('http2-x')).to.equal('HTTP2');
    expect(protocolOfPort('grpc-api')).to.equal('GRPC');
    expect(protocolOfPort('grpc-web')).to.equal('GRPC-WEB');
    expect(protocolOfPort('tcp-mysql')).to.equal('TCP');
    expect(protocolOfPort('tls-x')).to.equal('TLS');
    expect(protocolOfPort('https')).to.equal('HTTPS');
    expect(protocolOfPort('mongo')).to.equal('MONGO');
    expect(protocolOfPort('redis-main')).to.equal('REDIS');
    expect(protocolOfPort('web')).to.equal('UNSUPPORTED');
    expect(protocolOfPort('httpx')).to.equal('UNSUPPORTED');
    expect(protocolOfPort('web', 'http')).to.equal('HTTP');
    expect(protocolOfPort('tcp', 'kubernetes.io/h2c')).to.equal('HTTP2');
    expect(protocolOfPort('http', undefined, 'UDP')).to.equal('UDP');
  });

  it('resolves short names and matches wildcards', () => {
    expect(resolveShortName('reviews', 'shop')).to.equal('reviews.shop.svc.cluster.local');
    expect(resolveShortName('reviews.shop', 'x')).to.equal('reviews.shop');
    expect(resolveShortName('*.example.com', 'x')).to.equal('*.example.com');
    expect(hostSubsetOf('a.example.com', '*.example.com')).to.equal(true);
    expect(hostSubsetOf('example.com', '*.example.com')).to.equal(false);
    expect(hostSubsetOf('*.a.example.com', '*.example.com')).to.equal(true);
    expect(hostSubsetOf('anything', '*')).to.equal(true);
    const c: Array<[string, string]> = [
      ['*', 'any'],
      ['*.example.com', 'wide'],
      ['*.api.example.com', 'narrow'],
      ['x.api.example.com', 'exact'],
    ];
    expect(mostSpecificMatch('x.api.example.com', c)).to.equal('exact');
    expect(mostSpecificMatch('y.api.example.com', c)).to.equal('narrow');
    expect(mostSpecificMatch('www.example.com', c)).to.equal('wide');
    expect(mostSpecificMatch('other.org', c)).to.equal('any');
  });

  it('honours exportTo', () => {
    expect(isExportedTo([], 'a', 'b')).to.equal(true);
    expect(isExportedTo(['*'], 'a', 'b')).to.equal(true);
    expect(isExportedTo(['.'], 'a', 'a')).to.equal(true);
    expect(isExportedTo(['.'], 'a', 'b')).to.equal(false);
    expect(isExportedTo(['~'], 'a', 'a')).to.equal(false);
    expect(isExportedTo(['b', 'c'], 'a', 'c')).to.equal(true);
  });

  const objects = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'db', namespace: 'data', annotations: { 'networking.istio.io/exportTo': '.' } },
      spec: { clusterIP: '10.0.0.1', selector: { app: 'db' }, ports: [{ name: 'tcp', port: 5432 }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'front' },
      spec: {
        clusterIP: 'None',
        selector: { app: 'web' },
        ports: [{ name: 'http', port: 80, targetPort: 'http' }],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1beta1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: 'front', labels: { 'kubernetes.io/service-name': 'web' } },
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [
        {
          addresses: ['10.1.0.1'],
          conditions: { ready: true },
          topology: { 'topology.kubernetes.io/region': 'r1', 'topology.kubernetes.io/zone': 'z1' },
          targetRef: { kind: 'Pod', namespace: 'front', name: 'web-abc' },
        },
        { addresses: ['10.1.0.2'], conditions: { ready: false } },
      ],
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-abc',
        namespace: 'front',
        labels: { app: 'web', 'pod-template-hash': 'h1', 'security.istio.io/tlsMode': 'istio' },
        ownerReferences: [{ kind: 'ReplicaSet', name: 'web-h1' }],
      },
      spec: { serviceAccountName: 'web-sa', containers: [{ name: 'web' }] },
      status: { podIP: '10.1.0.1' },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'web-def',
        namespace: 'front',
        labels: { app: 'web', 'pod-template-hash': 'h2', 'security.istio.io/tlsMode': 'istio' },
        ownerReferences: [{ kind: 'ReplicaSet', name: 'web-h2' }],
      },
      spec: { serviceAccountName: 'web-sa', containers: [{ name: 'web' }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ext', namespace: 'front' },
      spec: {
        hosts: ['api.example.com', 'none.example.com'],
        resolution: 'DNS',
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
        exportTo: ['front', 'data'],
      },
    },
  ];

  it('builds services and endpoints from Services, EndpointSlices (v1beta1), Pods and ServiceEntries', () => {
    const snap = buildSnapshot(objects);
    expect(snap.services.map((s) => s.key)).to.deep.equal([
      'data/db.data.svc.cluster.local',
      'front/api.example.com',
      'front/none.example.com',
      'front/web.front.svc.cluster.local',
    ]);
    const web = snap.services.find((s) => s.name === 'web')!;
    expect(web.resolution).to.equal('NONE');
    expect(web.addresses).to.deep.equal([]);
    const eps = snap.endpoints.get(web.key)!;
    expect(eps.map((e) => [e.address, e.ready])).to.deep.equal([
      ['10.1.0.1', true],
      ['10.1.0.2', false],
    ]);
    expect(eps[0]).to.include({ serviceAccount: 'web-sa', workloadName: 'web', podName: 'web-abc' });
    expect(eps[0]!.labels['security.istio.io/tlsMode']).to.equal('istio');
    expect(eps[0]!.locality).to.deep.equal({ region: 'r1', zone: 'z1' });
    expect(eps[0]!.ports).to.deep.equal({ http: 8080 });
    // DNS ServiceEntry without endpoints: the host itself, resolved by the proxy.
    expect(snap.endpoints.get('front/api.example.com')!.map((e) => e.address)).to.deep.equal([
      'api.example.com',
    ]);
  });

  it('has a stable version independent of object order', () => {
    expect(buildSnapshot(objects).version).to.equal(buildSnapshot([...objects].reverse()).version);
    expect(buildSnapshot(objects.slice(1)).version).to.not.equal(buildSnapshot(objects).version);
  });

  it('groups pods into workloads by namespace, labels (minus per-revision ones) and service account', () => {
    const ws = workloadsFromPods(objects);
    expect(ws).to.have.length(1);
    expect(ws[0]).to.deep.include({ name: 'web', namespace: 'front', serviceAccount: 'web-sa' });
  });

  it('scopes visibility: exportTo and Sidecar egress hosts', () => {
    const snap = buildSnapshot([
      ...objects,
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Sidecar',
        metadata: { name: 'default', namespace: 'data' },
        spec: { egress: [{ hosts: ['./*', 'front/api.example.com'] }] },
      },
    ]);
    const hosts = (ns: string) =>
      scopeFor(snap, { name: 'x', namespace: ns, labels: {}, serviceAccount: 'default' }).services.map(
        (s) => s.service.hostname,
      );
    expect(hosts('front')).to.deep.equal([
      'api.example.com',
      'none.example.com',
      'web.front.svc.cluster.local',
    ]);
    expect(hosts('data')).to.deep.equal(['api.example.com', 'db.data.svc.cluster.local']);
    expect(hosts('elsewhere')).to.deep.equal(['web.front.svc.cluster.local']);
  });
});
