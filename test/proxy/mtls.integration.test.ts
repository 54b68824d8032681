/**
 * Mesh mTLS with certificates from the real CSR flow: the mesh CA authenticates each agent's
 * projected service-account token through TokenReview on the real apiserver (envtest), the
 * agents' CertificateManagers feed two sidecars, and traffic between them is STRICT mTLS.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { CertificateManager } from '../../src/agent/index.js';
import { type RunningMeshCa, startMeshCa } from '../../src/ca/index.js';
import type { Sidecar } from '../../src/proxy/sidecar/index.js';
import { createLogger } from '../../src/util/log.js';
import { useSharedControlPlane } from '../envtest/index.js';
import { send, startUpstream, type Upstream } from './helpers.js';
import { clientTables, SERVICE_PORT, serverTables, startSidecar, to } from './mtls-helpers.js';
import { sample } from './tcp-helpers.js';

const quiet = createLogger('mtls-it');
quiet.silent = true;

describe('mesh mTLS with certificates from the CA (TokenReview on the real apiserver) @integration', function () {
  this.timeout(60_000);
  const cp = useSharedControlPlane();
  const id = Date.now().toString(36);
  const caNs = `isthmus-mtls-ca-${id}`;
  const appNs = `mtls-app-${id}`;
  let core: CoreV1Api;
  let mesh: RunningMeshCa | undefined;
  let dir = '';
  let app: Upstream | undefined;
  const managers: CertificateManager[] = [];
  const sidecars: Sidecar[] = [];

  const tokenFile = async (sa: string) => {
    await core.createNamespacedServiceAccount({ namespace: appNs, body: { metadata: { name: sa } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name: sa,
      namespace: appNs,
      body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } },
    });
    const path = join(dir, `${sa}.token`);
    writeFileSync(path, tr.status!.token);
    return path;
  };

  before(async () => {
    core = cp().kubeConfig.makeApiClient(CoreV1Api);
    const authn = cp().kubeConfig.makeApiClient(AuthenticationV1Api);
    for (const name of [caNs, appNs]) await core.createNamespace({ body: { metadata: { name } } });
    dir = mkdtempSync(join(tmpdir(), 'isthmus-mtls-it-'));
    mesh = await startMeshCa({ core, authn, namespace: caNs, port: 0, host: '127.0.0.1', log: quiet });
    app = await startUpstream('reviews');
  });

  after(async () => {
    for (const m of managers) m.stop();
    await Promise.all(sidecars.map((s) => s.stop(0)));
    await mesh?.close();
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const name of [caNs, appNs]) await cp().kubectl(['delete', 'namespace', name, '--wait=false']);
  });

  it('STRICT mTLS between two sidecars whose identities the CA proved by TokenReview', async () => {
    const manager = async (sa: string) => {
      const m = new CertificateManager({
        caAddress: `127.0.0.1:${mesh!.server.port}`,
        caRootPem: mesh!.ca.rootCertPem,
        tokenPath: await tokenFile(sa),
        validitySeconds: 600,
        log: quiet,
      }).start();
      managers.push(m);
      return m;
    };
    const sm = await manager('reviews');
    const cm = await manager('productpage');
    const server = await startSidecar(sm, () => to(app!.port));
    const client = await startSidecar(cm, () => to(SERVICE_PORT));
    sidecars.push(server, client);
    await Promise.all([sm.whenReady(), cm.whenReady()]);
    expect(server.proxy.isReady() && client.proxy.isReady()).to.equal(true);

    const serverId = `spiffe://cluster.local/ns/${appNs}/sa/reviews`;
    const clientId = `spiffe://cluster.local/ns/${appNs}/sa/productpage`;
    expect(sm.current()!.spiffeId).to.equal(serverId);
    await server.proxy.applyTables(serverTables(app!.port, { mode: 'STRICT' }));
    const tables = clientTables(server.inboundPort, {
      tls: { mode: 'ISTIO_MUTUAL', auto: true, subjectAltNames: [serverId] },
    });
    await client.proxy.applyTables(tables);
    const r = await send(client.outboundPort);
    expect(r.status).to.equal(200);
    expect(
      sample(server.proxy.prometheus(), 'istio_requests_total', {
        reporter: 'destination',
        source_principal: clientId,
        connection_security_policy: 'mutual_tls',
      }),
    ).to.equal(1);

    // Expecting another identity: the client refuses the server (503 UF), the app sees nothing.
    const before = app!.seen.length;
    await client.proxy.applyTables({
      ...clientTables(server.inboundPort, {
        tls: {
          mode: 'ISTIO_MUTUAL',
          auto: true,
          subjectAltNames: [`spiffe://cluster.local/ns/${appNs}/sa/ratings`],
        },
      }),
      version: 'client-wrong-san',
    });
    expect((await send(client.outboundPort)).status).to.equal(503);
    expect(app!.seen.length).to.equal(before);
  });
});
