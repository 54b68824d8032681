import { AppsV1Api, AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { sleep } from './process.js';
import { useSharedControlPlane } from './shared.js';

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

const deployment = (name: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: {
        containers: [{ name: 'nginx', image: 'nginx:1.25', ports: [{ containerPort: 80 }] }],
      },
    },
  },
});

describe('envtest control plane @integration', function () {
  this.timeout(60_000);
  const cp = useSharedControlPlane();
  const ns = `envtest-smoke-${Date.now().toString(36)}`;

  it('creates a namespace with kubectl and sees it through client-node', async () => {
    const created = await cp().kubectl(['create', 'namespace', ns]);
    expect(created.code, created.stderr).to.equal(0);
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    const list = await core.listNamespace();
    expect(list.items.map((n) => n.metadata?.name)).to.include(ns);
    const read = await core.readNamespace({ name: ns });
    expect(read.status?.phase).to.equal('Active');
  });

  it('runs the deployment and replicaset controllers (Pods are created, never run)', async () => {
    const applied = await cp().kubectl(['apply', '-n', ns, '-f', '-'], {
      input: JSON.stringify(deployment('web')),
    });
    expect(applied.code, applied.stderr).to.equal(0);
    const apps = cp().kubeConfig.makeApiClient(AppsV1Api);
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    const rs = await eventually('a ReplicaSet', async () => {
      const list = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=web' });
      return list.items[0];
    });
    expect(rs.metadata?.ownerReferences?.[0]?.name).to.equal('web');
    const pods = await eventually('2 Pods', async () => {
      const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' });
      return list.items.length === 2 ? list.items : undefined;
    });
    for (const pod of pods) {
      expect(pod.spec?.nodeName).to.equal(undefined);
      expect(pod.spec?.serviceAccountName).to.equal('default');
    }
  });

  it('issues an istio-ca audience token for the default ServiceAccount and TokenReviews it', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    const authn = cp().kubeConfig.makeApiClient(AuthenticationV1Api);
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'default',
      namespace: 'default',
      body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).to.be.a('string').and.not.equal('');
    const review = await authn.createTokenReview({
      body: { spec: { token: token!, audiences: ['istio-ca'] } },
    });
    expect(review.status?.error ?? '').to.equal('');
    expect(review.status?.authenticated).to.equal(true);
    expect(review.status?.user?.username).to.equal('system:serviceaccount:default:default');
    expect(review.status?.audiences).to.deep.equal(['istio-ca']);

    const wrongAudience = await authn.createTokenReview({
      body: { spec: { token: token!, audiences: ['someone-else'] } },
    });
    expect(wrongAudience.status?.authenticated).to.not.equal(true);
  });

  it('restarts the apiserver on the same URL with the same data', async () => {
    const before = cp().server;
    await cp().stopApiserver();
    const down = await cp().kubectl(['get', 'namespace', ns, '--request-timeout=2s']);
    expect(down.code).to.not.equal(0);
    await cp().startApiserver();
    expect(cp().server).to.equal(before);
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    const read = await core.readNamespace({ name: ns });
    expect(read.metadata?.name).to.equal(ns);
    await cp().restartApiserver({ signal: 'SIGKILL' }); // a crash, not a clean shutdown
    const again = await cp().kubectl(['get', 'namespace', ns, '-o', 'name']);
    expect(again.stdout.trim()).to.equal(`namespace/${ns}`);
  });

  after(async () => {
    await cp().kubectl(['delete', 'namespace', ns, '--wait=false']);
  });
});
