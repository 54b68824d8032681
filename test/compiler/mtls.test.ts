/**
 * mTLS in the compiler: PeerAuthentication precedence (unit level; the golden case
 * testdata/mtls covers the whole output) and the cluster tls of auto mTLS / DestinationRules.
 */
import { expect } from 'chai';
import type { PeerAuthenticationSpec } from '../../src/api/security/peer-authentication.js';
import { clusterTls, istioSni } from '../../src/compiler/mtls.js';
import { inboundMtlsFor } from '../../src/compiler/peer-authentication.js';
import type { ConfigResource, MeshEndpoint, MeshService, MeshSnapshot } from '../../src/registry/types.js';
import { validateTables } from '../../src/tables/index.js';

function pa(
  namespace: string,
  name: string,
  spec: PeerAuthenticationSpec,
): ConfigResource<PeerAuthenticationSpec> {
  return { kind: 'PeerAuthentication', name, namespace, spec };
}

function snap(pas: ConfigResource<PeerAuthenticationSpec>[], endpoints: MeshEndpoint[] = []): MeshSnapshot {
  return {
    mesh: { rootNamespace: 'istio-system', outboundTrafficPolicy: 'ALLOW_ANY' },
    services: [SVC],
    endpoints: new Map(endpoints.length ? [[SVC.key, endpoints]] : []),
    virtualServices: [],
    destinationRules: [],
    sidecars: [],
    gateways: [],
    peerAuthentications: pas,
    version: 'x',
  };
}

const SVC: MeshService = {
  key: 'shop/reviews.shop.svc.cluster.local',
  hostname: 'reviews.shop.svc.cluster.local',
  name: 'reviews',
  namespace: 'shop',
  ports: [{ name: 'http', port: 9080, protocol: 'HTTP' }],
  addresses: ['10.0.0.1'],
  exportTo: [],
  resolution: 'STATIC',
  meshExternal: false,
  registry: 'Kubernetes',
  selector: { app: 'reviews' },
};

const W = { namespace: 'shop', labels: { app: 'reviews', version: 'v1' } };

function ep(address: string, sa: string, meshed: boolean): MeshEndpoint {
  return {
    address,
    ports: { http: 9080 },
    labels: meshed ? { app: 'reviews', 'security.istio.io/tlsMode': 'istio' } : { app: 'reviews' },
    namespace: 'shop',
    serviceAccount: sa,
    ready: true,
  };
}

describe('compiler/peer-authentication precedence', () => {
  const warnings: string[] = [];
  const warn = (r: string, m: string) => warnings.push(`${r}: ${m}`);
  beforeEach(() => {
    warnings.length = 0;
  });

  it('nothing set = PERMISSIVE (omitted from the tables)', () => {
    expect(inboundMtlsFor(snap([]), W, warn)).to.equal(undefined);
  });

  it('mesh-wide applies when nothing closer is set', () => {
    expect(
      inboundMtlsFor(snap([pa('istio-system', 'default', { mtls: { mode: 'STRICT' } })]), W, warn),
    ).to.deep.equal({ mode: 'STRICT' });
  });

  it('namespace beats mesh, workload selector beats namespace', () => {
    const s = snap([
      pa('istio-system', 'default', { mtls: { mode: 'STRICT' } }),
      pa('shop', 'default', { mtls: { mode: 'DISABLE' } }),
    ]);
    expect(inboundMtlsFor(s, W, warn)).to.deep.equal({ mode: 'DISABLE' });
    s.peerAuthentications.push(
      pa('shop', 'wl', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'STRICT' } }),
    );
    expect(inboundMtlsFor(s, W, warn)).to.deep.equal({ mode: 'STRICT' });
    // The selector must match.
    expect(inboundMtlsFor(s, { namespace: 'shop', labels: { app: 'other' } }, warn)).to.deep.equal({
      mode: 'DISABLE',
    });
  });

  it('UNSET inherits from the level above', () => {
    const s = snap([
      pa('istio-system', 'default', { mtls: { mode: 'STRICT' } }),
      pa('shop', 'default', { mtls: { mode: 'UNSET' } }),
      pa('shop', 'wl', { selector: { matchLabels: { app: 'reviews' } } }),
    ]);
    expect(inboundMtlsFor(s, W, warn)).to.deep.equal({ mode: 'STRICT' });
  });

  it('the oldest policy of a level wins (snapshot order)', () => {
    const s = snap([
      pa('shop', 'a-old', { mtls: { mode: 'STRICT' } }),
      pa('shop', 'b-new', { mtls: { mode: 'DISABLE' } }),
    ]);
    expect(inboundMtlsFor(s, W, warn)).to.deep.equal({ mode: 'STRICT' });
  });

  it('a selector policy in the root namespace is not mesh-wide; policies of other namespaces do not apply', () => {
    const s = snap([
      pa('istio-system', 'sel', { selector: { matchLabels: { app: 'reviews' } }, mtls: { mode: 'STRICT' } }),
      pa('other', 'default', { mtls: { mode: 'STRICT' } }),
    ]);
    expect(inboundMtlsFor(s, W, warn)).to.equal(undefined);
    expect(inboundMtlsFor(s, { namespace: 'istio-system', labels: { app: 'reviews' } }, warn)).to.deep.equal({
      mode: 'STRICT',
    });
  });

  it('portLevelMtls: only with a selector; UNSET ports and ports equal to the workload mode are left out', () => {
    const s = snap([
      pa('shop', 'default', { mtls: { mode: 'STRICT' }, portLevelMtls: { '8080': { mode: 'DISABLE' } } }),
      pa('shop', 'wl', {
        selector: { matchLabels: { app: 'reviews' } },
        portLevelMtls: {
          '9080': { mode: 'PERMISSIVE' },
          '9090': { mode: 'UNSET' },
          '9443': { mode: 'STRICT' },
        },
      }),
    ]);
    expect(inboundMtlsFor(s, W, warn)).to.deep.equal({ mode: 'STRICT', portLevel: { '9080': 'PERMISSIVE' } });
    expect(warnings).to.deep.equal([
      'PeerAuthentication shop/default: portLevelMtls is only honoured on a policy with a workload selector; ignored',
    ]);
  });

  it('the result validates as part of the tables', () => {
    const inboundMtls = inboundMtlsFor(snap([pa('shop', 'default', { mtls: { mode: 'STRICT' } })]), W, warn)!;
    const t = {
      apiVersion: 'isthmus.io/tables/v1',
      version: '1',
      listeners: [],
      routeConfigs: [],
      clusters: [],
      inboundMtls,
    };
    expect(validateTables(t).ok).to.equal(true);
    expect(validateTables({ ...t, inboundMtls: { mode: 'LOOSE' } }).ok).to.equal(false);
  });
});

describe('compiler/mtls cluster tls', () => {
  const warn = () => {};
  const base = { svc: SVC, port: 9080, subset: '', where: 'DestinationRule shop/reviews', warn };

  it('auto mTLS when some endpoint is meshed: SANs are the service accounts behind the service', () => {
    const s = snap([], [ep('10.1.0.1', 'reviews', true), ep('10.1.0.2', 'legacy', false)]);
    expect(clusterTls({ ...base, tls: undefined, snap: s })).to.deep.equal({
      mode: 'ISTIO_MUTUAL',
      auto: true,
      sni: istioSni(9080, '', SVC.hostname),
      subjectAltNames: [
        'spiffe://cluster.local/ns/shop/sa/legacy',
        'spiffe://cluster.local/ns/shop/sa/reviews',
      ],
    });
  });

  it('no meshed endpoint: plaintext; DestinationRule DISABLE: plaintext even to meshed endpoints', () => {
    expect(
      clusterTls({ ...base, tls: undefined, snap: snap([], [ep('10.1.0.2', 'legacy', false)]) }),
    ).to.equal(undefined);
    const meshed = snap([], [ep('10.1.0.1', 'reviews', true)]);
    expect(clusterTls({ ...base, tls: { mode: 'DISABLE' }, snap: meshed })).to.equal(undefined);
  });

  it('DestinationRule ISTIO_MUTUAL applies to every endpoint (no auto), its SANs win', () => {
    const s = snap([], [ep('10.1.0.1', 'reviews', true)]);
    expect(clusterTls({ ...base, subset: 'v1', tls: { mode: 'ISTIO_MUTUAL' }, snap: s })).to.deep.equal({
      mode: 'ISTIO_MUTUAL',
      sni: 'outbound_.9080_.v1_.reviews.shop.svc.cluster.local',
      subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/reviews'],
    });
    expect(
      clusterTls({
        ...base,
        tls: { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://x/ns/a/sa/b'] },
        snap: s,
      })?.subjectAltNames,
    ).to.deep.equal(['spiffe://x/ns/a/sa/b']);
  });

  it('SIMPLE / MUTUAL carry files, SNI, SANs; credentialName is kept (fails closed) with a warning', () => {
    const warnings: string[] = [];
    const w = (_r: string, m: string) => warnings.push(m);
    const s = snap([]);
    expect(
      clusterTls({
        ...base,
        warn: w,
        snap: s,
        tls: {
          mode: 'MUTUAL',
          clientCertificate: '/c.pem',
          privateKey: '/k.pem',
          caCertificates: '/ca.pem',
          sni: 'api.example.com',
          subjectAltNames: ['api.example.com'],
        },
      }),
    ).to.deep.equal({
      mode: 'MUTUAL',
      sni: 'api.example.com',
      subjectAltNames: ['api.example.com'],
      caCertificates: '/ca.pem',
      clientCertificate: '/c.pem',
      privateKey: '/k.pem',
    });
    expect(
      clusterTls({ ...base, warn: w, snap: s, tls: { mode: 'SIMPLE', credentialName: 'api-ca' } }),
    ).to.deep.equal({
      mode: 'SIMPLE',
      credentialName: 'api-ca',
    });
    expect(warnings.join('\n')).to.match(/credentialName "api-ca" cannot be resolved/);
  });
});
