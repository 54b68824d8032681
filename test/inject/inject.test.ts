import type { V1Container } from '@kubernetes/client-node';
import { expect } from 'chai';
import {
  ANNOTATIONS,
  KUBE_APP_PROBERS_ENV,
  PORTS,
  PROXY_CONTAINER_NAME,
} from '../../src/inject/constants.js';
import { injectPod } from '../../src/inject/inject.js';
import type { InjectResult, Pod } from '../../src/inject/types.js';
import { simplePod, testContext } from './helpers.js';

function injected(r: InjectResult): Pod {
  if (r.kind !== 'injected') throw new Error(`expected injection, got ${JSON.stringify(r)}`);
  return r.pod;
}

function proxyOf(pod: Pod): V1Container {
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return all.find((c) => c.name === PROXY_CONTAINER_NAME)!;
}

describe('injectPod', () => {
  const ctx = testContext();

  it("gives the proxy the app's service-account token mount (added before webhooks run), idempotently", () => {
    const pod = simplePod();
    pod.spec!.volumes = [{ name: 'default-token-abcde', secret: { secretName: 'default-token-abcde' } }];
    pod.spec!.containers[0]!.volumeMounts = [
      {
        name: 'default-token-abcde',
        mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
        readOnly: true,
      },
    ];
    const once = injected(injectPod(pod, ctx));
    expect(proxyOf(once).volumeMounts).to.deep.include({
      name: 'default-token-abcde',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    const again = injectPod(once, ctx);
    expect(again.kind).to.equal('skipped');
  });

  describe('skips', () => {
    const cases: Array<[string, Pod, string]> = [
      ['host network', { ...simplePod(), spec: { ...simplePod().spec!, hostNetwork: true } }, 'host-network'],
      ['label opt-out', simplePod({ labels: { 'sidecar.istio.io/inject': 'false' } }), 'opted-out'],
      ['annotation opt-out', simplePod({ annotations: { 'sidecar.istio.io/inject': 'false' } }), 'opted-out'],
      [
        'control-plane namespace',
        { ...simplePod(), metadata: { ...simplePod().metadata, namespace: 'istio-system' } },
        'control-plane-namespace',
      ],
      [
        'kube-system',
        { ...simplePod(), metadata: { ...simplePod().metadata, namespace: 'kube-system' } },
        'ignored-namespace',
      ],
    ];
    for (const [name, pod, reason] of cases) {
      it(name, () => {
        const r = injectPod(pod, ctx);
        expect(r.kind).to.equal('skipped');
        expect(r.kind === 'skipped' && r.reason).to.equal(reason);
      });
    }

    it('prefers the label over the legacy annotation', () => {
      const pod = simplePod({
        labels: { 'sidecar.istio.io/inject': 'true' },
        annotations: { 'sidecar.istio.io/inject': 'false' },
      });
      expect(injectPod(pod, ctx).kind).to.equal('injected');
    });

    it('uses the request namespace when the pod has none', () => {
      const pod = simplePod();
      delete pod.metadata!.namespace;
      const r = injectPod(pod, ctx, { namespace: 'istio-system' });
      expect(r.kind === 'skipped' && r.reason).to.equal('control-plane-namespace');
    });

    it('warns on an inject value that is neither true nor false', () => {
      const r = injectPod(simplePod({ labels: { 'sidecar.istio.io/inject': 'yes' } }), ctx);
      expect(r.kind).to.equal('injected');
      expect(r.kind === 'injected' && r.warnings.join()).to.contain('"yes"');
    });
  });

  describe('errors', () => {
    const bad: Array<[string, string]> = [
      [ANNOTATIONS.includeInboundPorts, '80,http'],
      [ANNOTATIONS.excludeInboundPorts, '*'],
      [ANNOTATIONS.excludeOutboundPorts, '70000'],
      [ANNOTATIONS.includeOutboundIPRanges, '10.0.0.0'],
      [ANNOTATIONS.excludeOutboundIPRanges, '10.0.0.0/33'],
      [ANNOTATIONS.interceptionMode, 'IPVS'],
      [ANNOTATIONS.logLevel, 'loud'],
      [ANNOTATIONS.rewriteAppHTTPProbers, 'maybe'],
      [ANNOTATIONS.proxyCPU, 'lots'],
      [ANNOTATIONS.proxyMemoryLimit, '-1Gi'],
      [ANNOTATIONS.proxyImage, 'has space'],
      [ANNOTATIONS.nativeSidecar, 'sure'],
      [ANNOTATIONS.proxyConfig, '[1, 2]'],
      [ANNOTATIONS.proxyConfig, '{"holdApplicationUntilProxyStarts": "yes"}'],
      [ANNOTATIONS.proxyConfig, '{bad'],
    ];
    for (const [name, value] of bad) {
      it(`${name}=${value}`, () => {
        const r = injectPod(simplePod({ annotations: { [name]: value } }), ctx);
        expect(r.kind).to.equal('error');
        if (r.kind !== 'error') return;
        expect(r.errors[0]!.field).to.equal(name);
        expect(r.message).to.contain(name).and.contain(value);
      });
    }

    it('collects every bad annotation', () => {
      const r = injectPod(
        simplePod({ annotations: { [ANNOTATIONS.logLevel]: 'x', [ANNOTATIONS.excludeOutboundPorts]: 'y' } }),
        ctx,
      );
      expect(r.kind === 'error' && r.errors.map((e) => e.field)).to.have.members([
        ANNOTATIONS.logLevel,
        ANNOTATIONS.excludeOutboundPorts,
      ]);
    });

    it('refuses a CPU request above the CPU limit', () => {
      const r = injectPod(
        simplePod({ annotations: { [ANNOTATIONS.proxyCPU]: '3', [ANNOTATIONS.proxyCPULimit]: '2000m' } }),
        ctx,
      );
      expect(r.kind === 'error' && r.message).to.contain('exceeds');
    });

    it('refuses a pod whose volume name collides with the template', () => {
      const pod = simplePod();
      pod.spec!.volumes = [{ name: 'istio-data', emptyDir: {} }];
      const r = injectPod(pod, ctx);
      expect(r.kind === 'error' && r.message).to.contain('istio-data');
    });
  });

  describe('idempotence', () => {
    it('inject(inject(x)) == inject(x)', () => {
      const once = injected(injectPod(simplePod(), ctx));
      const twice = injectPod(once, ctx);
      expect(twice.kind === 'skipped' && twice.reason).to.equal('already-injected');
    });

    it('re-renders an injected pod whose settings changed, without a second proxy', () => {
      const once = injected(injectPod(simplePod(), ctx));
      once.metadata!.annotations![ANNOTATIONS.proxyImage] = 'example.com/other:2';
      const again = injected(injectPod(once, ctx));
      expect(again.spec!.containers.filter((c) => c.name === PROXY_CONTAINER_NAME)).to.have.length(1);
      expect(proxyOf(again).image).to.equal('example.com/other:2');
      expect(again.spec!.initContainers!.filter((c) => c.name === 'istio-init')).to.have.length(1);
      expect(again.spec!.volumes!.filter((v) => v.name === 'istio-token')).to.have.length(1);
      // Probes are rewritten from the originals, not from the rewritten ones.
      const env = proxyOf(again).env!.find((e) => e.name === KUBE_APP_PROBERS_ENV)!;
      expect(JSON.parse(env.value!)['/app-health/web/readyz'].httpGet.path).to.equal('/ready');
      // And the next round settles again.
      expect(injectPod(again, ctx).kind).to.equal('skipped');
    });

    it('is stable for native sidecars, hold, overrides and TPROXY', () => {
      const pod = simplePod({
        annotations: {
          [ANNOTATIONS.proxyConfig]: 'holdApplicationUntilProxyStarts: true',
          [ANNOTATIONS.interceptionMode]: 'TPROXY',
        },
      });
      pod.spec!.containers.push({
        name: PROXY_CONTAINER_NAME,
        image: 'auto',
        env: [{ name: 'X', value: '1' }],
      });
      for (const native of [true, false]) {
        const c = testContext({ nativeSidecars: native });
        const once = injected(injectPod(pod, c));
        expect(injectPod(once, c).kind).to.equal('skipped');
      }
    });

    it('does not modify its input', () => {
      const pod = simplePod();
      const copy = structuredClone(pod);
      injectPod(pod, ctx);
      expect(pod).to.deep.equal(copy);
    });
  });

  describe('probe rewrite', () => {
    const pod = injected(injectPod(simplePod(), ctx));
    const web = pod.spec!.containers.find((c) => c.name === 'web')!;

    it('points HTTP probes at the agent', () => {
      expect(web.readinessProbe!.httpGet).to.deep.equal({
        path: '/app-health/web/readyz',
        port: PORTS.status,
      });
      expect(web.readinessProbe!.timeoutSeconds).to.equal(2);
      expect(web.livenessProbe!.httpGet).to.deep.equal({
        path: '/app-health/web/livez',
        port: PORTS.status,
        scheme: 'HTTP',
      });
    });

    it('keeps the originals, named ports resolved, in ISTIO_KUBE_APP_PROBERS', () => {
      const env = proxyOf(pod).env!.find((e) => e.name === KUBE_APP_PROBERS_ENV)!;
      expect(JSON.parse(env.value!)).to.deep.equal({
        '/app-health/web/livez': { httpGet: { path: '/live', port: 8080, scheme: 'HTTPS' } },
        '/app-health/web/readyz': { httpGet: { path: '/ready', port: 8080 }, timeoutSeconds: 2 },
      });
    });

    it('leaves probes alone when rewriteAppHTTPProbers is false', () => {
      const p = injected(
        injectPod(simplePod({ annotations: { [ANNOTATIONS.rewriteAppHTTPProbers]: 'false' } }), ctx),
      );
      expect(p.spec!.containers[0]!.readinessProbe!.httpGet!.path).to.equal('/ready');
      expect(proxyOf(p).env!.some((e) => e.name === KUBE_APP_PROBERS_ENV)).to.equal(false);
    });

    it('warns about a named port the container does not declare', () => {
      const src = simplePod();
      src.spec!.containers[0]!.readinessProbe!.httpGet!.port = 'nope';
      const r = injectPod(src, ctx);
      expect(r.kind === 'injected' && r.warnings.join()).to.contain('"nope"');
    });
  });

  describe('layout', () => {
    it('uses native sidecars from Kubernetes 1.29', () => {
      for (const [version, native] of [
        ['1.28.9', false],
        ['v1.29.0', true],
        ['v1.31.2-gke.1', true],
        ['nonsense', false],
      ] as const) {
        const pod = injected(injectPod(simplePod(), testContext({ clusterVersion: version })));
        const inInit = pod.spec!.initContainers!.find((c) => c.name === PROXY_CONTAINER_NAME);
        expect(Boolean(inInit), version).to.equal(native);
        if (inInit) {
          expect(inInit.restartPolicy).to.equal('Always');
          expect(pod.spec!.initContainers!.map((c) => c.name)).to.deep.equal([
            'istio-init',
            PROXY_CONTAINER_NAME,
          ]);
        }
      }
    });

    it('puts the proxy first with a waiting postStart hook when holding the app', () => {
      const pod = injected(
        injectPod(
          simplePod({
            annotations: { [ANNOTATIONS.proxyConfig]: '{"holdApplicationUntilProxyStarts":true}' },
          }),
          ctx,
        ),
      );
      expect(pod.spec!.containers[0]!.name).to.equal(PROXY_CONTAINER_NAME);
      expect(pod.spec!.containers[0]!.lifecycle!.postStart!.exec!.command).to.include('wait');
    });

    it('runs istio-init after the pod own init containers', () => {
      const src = simplePod();
      src.spec!.initContainers = [{ name: 'migrate', image: 'm' }];
      const pod = injected(injectPod(src, ctx));
      expect(pod.spec!.initContainers!.map((c) => c.name)).to.deep.equal(['migrate', 'istio-init']);
    });

    it('lays out the iptables arguments as Istio does', () => {
      const pod = injected(
        injectPod(
          simplePod({
            annotations: {
              [ANNOTATIONS.excludeInboundPorts]: '9000',
              [ANNOTATIONS.excludeOutboundPorts]: '5432',
              [ANNOTATIONS.excludeOutboundIPRanges]: '10.96.0.1/32',
            },
          }),
          ctx,
        ),
      );
      const init = pod.spec!.initContainers!.find((c) => c.name === 'istio-init')!;
      expect(init.args).to.deep.equal([
        'iptables',
        '-p',
        '15001',
        '-z',
        '15006',
        '-u',
        '1337',
        '-m',
        'REDIRECT',
        '-i',
        '*',
        '-x',
        '10.96.0.1/32',
        '-b',
        '8080',
        '-d',
        '15090,15021,15020,9000',
        '-o',
        '5432',
      ]);
      expect(init.securityContext!.capabilities!.add).to.deep.equal(['NET_ADMIN', 'NET_RAW']);
      expect(init.securityContext!.runAsUser).to.equal(0);
      expect(pod.metadata!.annotations![ANNOTATIONS.excludeInboundPorts]).to.equal('15020,9000');
    });

    it('runs the proxy as 1337 with downward-API identity and Istio default resources', () => {
      const pod = injected(injectPod(simplePod(), ctx));
      const proxy = proxyOf(pod);
      expect(proxy.securityContext!.runAsUser).to.equal(1337);
      expect(proxy.securityContext!.runAsGroup).to.equal(1337);
      const env = Object.fromEntries(
        proxy.env!.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]),
      );
      expect(env).to.include({
        POD_NAME: 'metadata.name',
        POD_NAMESPACE: 'metadata.namespace',
        INSTANCE_IP: 'status.podIP',
        SERVICE_ACCOUNT: 'spec.serviceAccountName',
      });
      expect(proxy.resources).to.deep.equal({
        requests: { cpu: '100m', memory: '128Mi' },
        limits: { cpu: '2', memory: '1Gi' },
      });
      expect(proxy.readinessProbe!.httpGet).to.deep.equal({ path: '/healthz/ready', port: PORTS.health });
      const token = pod.spec!.volumes!.find((v) => v.name === 'istio-token')!;
      expect(token.projected!.sources![0]!.serviceAccountToken!.audience).to.equal('istio-ca');
      expect(pod.metadata!.labels).to.include({
        'security.istio.io/tlsMode': 'istio',
        'service.istio.io/canonical-name': 'web',
      });
      expect(JSON.parse(pod.metadata!.annotations![ANNOTATIONS.status]!)).to.deep.equal({
        initContainers: ['istio-init'],
        containers: [PROXY_CONTAINER_NAME],
        volumes: ['istio-envoy', 'istio-data', 'istio-podinfo', 'istio-token', 'istiod-ca-cert'],
        imagePullSecrets: null,
        revision: 'default',
      });
    });

    it('warns that a Job needs /quitquitquit without native sidecars', () => {
      const r = injectPod(simplePod(), ctx, {
        workload: { name: 'backup', kind: 'Job', apiVersion: 'batch/v1' },
      });
      expect(r.kind === 'injected' && r.warnings.join()).to.contain('quitquitquit');
      const native = injectPod(simplePod(), testContext({ nativeSidecars: true }), {
        workload: { name: 'backup', kind: 'Job', apiVersion: 'batch/v1' },
      });
      expect(native.kind === 'injected' && native.warnings).to.deep.equal([]);
    });

    it('derives the workload from a Deployment-owned ReplicaSet', () => {
      const src = simplePod({ labels: { 'pod-template-hash': '5d8f7' } });
      src.metadata!.ownerReferences = [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f7', uid: 'u', controller: true },
      ];
      const env = proxyOf(injected(injectPod(src, ctx))).env!;
      expect(env.find((e) => e.name === 'ISTIO_META_OWNER')!.value).to.equal(
        'kubernetes://apis/apps/v1/namespaces/shop/deployments/web',
      );
    });
  });
});
