/**
 * The webhooks end to end on a real kube-apiserver: CRDs from crds/ install, the real
 * `isthmus controller` registers itself, and kubectl sees its verdicts and injections.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../../src/util/paths.js';
import { type ControlPlane, useSharedControlPlane } from '../envtest/index.js';
import { type ControllerProcess, eventually, startController } from './controller.js';

const fixture = (p: string) => readFileSync(join(PROJECT_ROOT, 'test/validation/fixtures', p), 'utf8');

const badWeight = fixture('invalid/virtualservice/negative-weight.yaml');

describe('validating and mutating webhooks on a real apiserver @integration', function () {
  this.timeout(120_000);
  const controlPlane = useSharedControlPlane();
  let cp: ControlPlane;
  let controller: ControllerProcess | undefined;

  const kubectl = async (args: string[], input?: string) =>
    cp.kubectl(args, input === undefined ? {} : { input });

  before(async () => {
    cp = controlPlane();
    const crds = await kubectl(['apply', '-f', join(PROJECT_ROOT, 'crds')]);
    expect(crds.code, crds.stderr).to.equal(0);
    const established = await kubectl([
      'wait',
      '--for=condition=established',
      '--timeout=60s',
      '-f',
      join(PROJECT_ROOT, 'crds'),
    ]);
    expect(established.code, established.stderr).to.equal(0);
    // Install like a user (every file of config/ and webhooks/ is a Kubernetes object); the
    // controller then runs out of cluster and re-points the webhooks at itself by URL.
    const install = await kubectl([
      'apply',
      '-f',
      join(PROJECT_ROOT, 'config'),
      '-f',
      join(PROJECT_ROOT, 'webhooks'),
    ]);
    expect(install.code, install.stderr).to.equal(0);
    for (const name of ['shop', 'plain']) await kubectl(['create', 'namespace', name]);
    controller = await startController(cp);
    // Registered, and the apiserver is calling it: an invalid object is refused.
    let last = '';
    await eventually(
      'the validating webhook to refuse an invalid VirtualService',
      async () => {
        const res = await kubectl(['apply', '--dry-run=server', '-f', '-'], badWeight);
        last = res.stderr;
        return res.code !== 0 && res.stderr.includes('denied the request');
      },
      60_000,
      500,
    ).catch((err: Error) => {
      const full = readFileSync(cp.logs.apiserver, 'utf8');
      const crash = full.search(/^(panic:|fatal error:|F\d{4} )/m);
      const apiserverLog =
        crash >= 0 ? full.slice(crash, crash + 3000) : full.split('\n').slice(-15).join('\n');
      throw new Error(
        `${err.message}\nlast kubectl: ${last}\ncontroller log:\n${controller!.logTail(5)}\napiserver log:\n${apiserverLog}`,
      );
    });
  });

  after(async () => {
    await controller?.stop();
    // The control plane is shared with later suites: do not leave failurePolicy=Fail webhooks
    // pointing at a stopped controller.
    await kubectl([
      'delete',
      '--ignore-not-found',
      'validatingwebhookconfiguration/isthmus-validator',
      'mutatingwebhookconfiguration/isthmus-sidecar-injector',
    ]);
  });

  it('registers both webhook configurations with the caBundle of its own CA', async () => {
    for (const kind of [
      'validatingwebhookconfiguration/isthmus-validator',
      'mutatingwebhookconfiguration/isthmus-sidecar-injector',
    ]) {
      const res = await kubectl(['get', kind, '-o', 'json']);
      expect(res.code, res.stderr).to.equal(0);
      const hooks = JSON.parse(res.stdout).webhooks as Array<{
        clientConfig: { caBundle?: string; url?: string };
      }>;
      const ca = Buffer.from(hooks[0]!.clientConfig.caBundle ?? '', 'base64').toString();
      expect(ca).to.contain('BEGIN CERTIFICATE');
      expect(hooks[0]!.clientConfig.url).to.match(/^https:\/\/127\.0\.0\.1:\d+\/(validate|inject)$/);
    }
  });

  it('accepts every valid Istio document (v1alpha3, v1beta1 and v1)', async () => {
    const dir = join(PROJECT_ROOT, 'test/validation/fixtures/valid');
    const namespaces = new Set<string>();
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.yaml'),
    )) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
        const ns = (doc.toJS() as { metadata?: { namespace?: string } } | null)?.metadata?.namespace;
        if (ns) namespaces.add(ns);
      }
    }
    for (const n of namespaces) await kubectl(['create', 'namespace', n]);
    const res = await kubectl(['apply', '-R', '-f', dir]);
    expect(res.code, res.stderr).to.equal(0);
  });

  it('refuses an invalid VirtualService naming the resource, the field and the reason', async () => {
    const res = await kubectl(['apply', '-f', '-'], badWeight);
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.contain('admission webhook "validation.istio.io" denied the request');
    expect(res.stderr).to.contain('VirtualService shop/reviews: spec.http[0].route[1].weight: must be >= 0');
  });

  it('refuses a misspelt field by name instead of silently dropping it', async () => {
    const res = await kubectl(
      ['apply', '-f', '-'],
      `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - name: v1
    lables: {version: v1}
`,
    );
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.contain(
      'DestinationRule shop/reviews: spec.subsets[0].lables: unknown field (did you mean "labels"?)',
    );
  });

  it('refuses an invalid update of an existing object and keeps the stored one', async () => {
    const good = `
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: ratings, namespace: shop}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
    timeout: 10s
`;
    expect((await kubectl(['apply', '-f', '-'], good)).code).to.equal(0);
    const res = await kubectl(['apply', '-f', '-'], good.replace('timeout: 10s', 'timeout: "10"'));
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.contain('VirtualService shop/ratings: spec.http[0].timeout: invalid duration "10"');
    const stored = await kubectl([
      'get',
      'vs',
      'ratings',
      '-n',
      'shop',
      '-o',
      'jsonpath={.spec.http[0].timeout}',
    ]);
    expect(stored.stdout).to.equal('10s');
  });

  it('passes warnings through to kubectl', async () => {
    const res = await kubectl(
      ['apply', '-f', '-'],
      `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: shop}
spec:
  hosts: [details]
  http:
  - route:
    - destination: {host: details}
  - match:
    - uri: {prefix: /v2}
    route:
    - destination: {host: details}
`,
    );
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stderr).to.contain(
      'Warning: VirtualService shop/details: spec.http[1]: this route is unreachable',
    );
  });

  it('injects pods of a labelled namespace, and only those', async () => {
    expect(
      (await kubectl(['label', 'namespace', 'shop', 'istio-injection=enabled', '--overwrite'])).code,
    ).to.equal(0);
    const deployment = (name: string, ns: string, podLabels: Record<string, string> = {}) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${ns}}
spec:
  replicas: 2
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: ${JSON.stringify({ app: name, version: 'v1', ...podLabels })}
    spec:
      containers:
      - name: app
        image: docker.io/library/busybox:stable
        ports: [{containerPort: 9080}]
`;
    const apply = await kubectl(
      ['apply', '-f', '-'],
      [
        deployment('reviews', 'shop'),
        deployment('optout', 'shop', { 'sidecar.istio.io/inject': 'false' }),
        deployment('reviews', 'plain'),
      ].join('---\n'),
    );
    expect(apply.code, apply.stderr).to.equal(0);

    const podsOf = async (ns: string, app: string) => {
      const res = await kubectl(['get', 'pods', '-n', ns, '-l', `app=${app}`, '-o', 'json']);
      const items = JSON.parse(res.stdout).items as Array<{
        metadata: { annotations?: Record<string, string>; labels: Record<string, string> };
        spec: {
          containers: Array<{ name: string }>;
          initContainers?: Array<{ name: string; args?: string[] }>;
        };
      }>;
      return items.length === 2 ? items : undefined;
    };
    const injected = await eventually('the replicaset controller to create reviews pods in shop', () =>
      podsOf('shop', 'reviews'),
    );
    for (const pod of injected) {
      const names = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => c.name);
      expect(names).to.include.members(['istio-init', 'istio-proxy', 'app']);
      expect(pod.metadata.labels['security.istio.io/tlsMode']).to.equal('istio');
      expect(pod.metadata.annotations?.['sidecar.istio.io/status']).to.contain('istio-proxy');
      const init = pod.spec.initContainers!.find((c) => c.name === 'istio-init')!;
      expect(init.args!.join(' ')).to.contain('-p 15001 -z 15006 -u 1337 -m REDIRECT');
    }
    for (const [ns, app] of [
      ['shop', 'optout'],
      ['plain', 'reviews'],
    ] as const) {
      const pods = await eventually(`pods of ${ns}/${app}`, () => podsOf(ns, app));
      for (const pod of pods) {
        expect(pod.spec.containers.map((c) => c.name)).to.deep.equal(['app']);
        expect(pod.spec.initContainers ?? []).to.deep.equal([]);
      }
    }
  });

  it('keeps its serving certificate across a restart', async () => {
    const secret = async () =>
      (
        await kubectl([
          'get',
          'secret',
          'isthmus-webhook-certs',
          '-n',
          'istio-system',
          '-o',
          'jsonpath={.data.tls\\.crt}',
        ])
      ).stdout;
    const before = await secret();
    expect(before).to.not.equal('');
    const port = controller!.port;
    await controller!.stop();
    controller = await startController(cp, [], port);
    await eventually(
      'the restarted controller to refuse an invalid VirtualService',
      async () => {
        const res = await kubectl(['apply', '--dry-run=server', '-f', '-'], badWeight);
        return res.code !== 0 && res.stderr.includes('spec.http[0].route[1].weight: must be >= 0');
      },
      30_000,
      300,
    );
    expect(await secret()).to.equal(before);
  });
});
