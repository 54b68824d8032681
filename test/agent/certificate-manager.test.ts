import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { expect } from 'chai';
import { uriSans } from '../../src/agent/accept.js';
import {
  CertificateManager,
  type CertificateManager as CM,
  type WorkloadCertificate,
} from '../../src/agent/index.js';
import { MeshCa } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { type CaServer, startCaServer } from '../../src/ca/server.js';
import { TokenAuthenticator, type TokenReviewFn } from '../../src/ca/token-review.js';
import { createLogger } from '../../src/util/log.js';
import { fakeJwt, pluggedMaterialFixture } from '../ca/helpers.js';

const pemCount = (pem: string) => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;

const quiet = createLogger('agent-test');
quiet.silent = true;

const review: TokenReviewFn = async (token) => {
  const { sub } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub: string };
  return {
    authenticated: true,
    audiences: ['istio-ca'],
    user: { username: sub, groups: ['system:serviceaccounts'] },
  };
};

const once = <T>(m: CM, event: 'certificate' | 'fetch-failed'): Promise<T> =>
  new Promise((resolve) => m.once(event, (...args: unknown[]) => resolve(args as T)));

describe('agent/CertificateManager (local CA, fake TokenReview)', function () {
  this.timeout(30_000);
  let dir: string;
  let tokenPath: string;
  let ca: MeshCa;
  let server: CaServer | undefined;
  let port = 0;
  const managers: CM[] = [];

  const startCa = async () => {
    server = await startCaServer({
      ca,
      authenticator: new TokenAuthenticator({ review }),
      port,
      host: '127.0.0.1',
      servingNames: ['127.0.0.1'],
      log: quiet,
    });
    port = server.port;
  };
  const manager = (extra: Partial<ConstructorParameters<typeof CertificateManager>[0]> = {}) => {
    const m = new CertificateManager({
      caAddress: `127.0.0.1:${port}`,
      caRootPem: ca.rootCertPem,
      tokenPath,
      retryInitialMs: 100,
      retryMaxMs: 400,
      log: quiet,
      ...extra,
    });
    managers.push(m);
    return m;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'isthmus-agent-'));
    tokenPath = join(dir, 'istio-token');
    writeFileSync(
      tokenPath,
      fakeJwt({
        sub: 'system:serviceaccount:shop:reviews',
        aud: ['istio-ca'],
        exp: Math.floor(Date.now() / 1000) + 3600,
      }),
    );
    ca = new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
      trustDomain: 'cluster.local',
    });
    await startCa();
  });
  after(async () => {
    for (const m of managers) m.stop();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is not ready until it holds a certificate, then exposes it', async () => {
    const m = manager();
    expect(m.ready).to.equal(false);
    expect(m.current()).to.equal(undefined);
    const events: string[] = [];
    m.on('certificate', (_c, reason) => events.push(reason));
    m.start();
    const cert = await m.whenReady();
    expect(m.ready).to.equal(true);
    expect(m.current()).to.equal(cert);
    expect(cert.spiffeId).to.equal('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(cert.notAfter.getTime() - Date.now()).to.be.closeTo(24 * 3600_000, 10_000);
    expect(events).to.deep.equal(['initial']);
    m.stop();
  });

  it('waits for a token file that appears later (kubelet may mount it after start)', async () => {
    const late = join(dir, 'late-token');
    const m = manager({ tokenPath: late });
    const failed = once<[Error, number]>(m, 'fetch-failed');
    m.start();
    const [err] = await failed;
    expect(err.message).to.match(/cannot read the service-account token .*ENOENT/);
    expect(m.ready).to.equal(false);
    writeFileSync(
      late,
      fakeJwt({
        sub: 'system:serviceaccount:shop:late',
        aud: 'istio-ca',
        exp: Math.floor(Date.now() / 1000) + 3600,
      }),
    );
    expect((await m.whenReady()).spiffeId).to.equal('spiffe://cluster.local/ns/shop/sa/late');
    m.stop();
  });

  it('rotates 4-second certificates before expiry, keeps serving while the CA is down, then recovers; TLS hot-swaps', async () => {
    const m = manager({ validitySeconds: 4 });
    m.start();
    const first = await m.whenReady();

    // A TLS server using the workload certificate, swapped on every rotation.
    const tlsOpts = (c: WorkloadCertificate) => ({ cert: c.certChainPem, key: c.keyPem, ca: c.rootPem });
    const tlsServer = createServer(tlsOpts(first), (s) => s.end('hi'));
    m.on('certificate', (c) => tlsServer.setSecureContext(tlsOpts(c)));
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    const tlsPort = (tlsServer.address() as { port: number }).port;
    const peerNotAfter = () =>
      new Promise<Date>((resolve, reject) => {
        const s = connect(
          { host: '127.0.0.1', port: tlsPort, ca: first.rootPem, checkServerIdentity: () => undefined },
          () => {
            const peer = s.getPeerX509Certificate()!;
            expect(uriSans(peer)).to.deep.equal(['spiffe://cluster.local/ns/shop/sa/reviews']);
            resolve(new Date(peer.validTo));
            s.end();
          },
        );
        s.on('error', reject);
      });

    const [second, reason] = await once<[WorkloadCertificate, string]>(m, 'certificate');
    expect(reason).to.equal('rotation');
    expect(Date.now()).to.be.below(first.notAfter.getTime()); // before the old one expired
    expect(second.notAfter.getTime()).to.be.above(first.notAfter.getTime());
    expect(second.keyPem).to.not.equal(first.keyPem); // a new key every time
    expect((await peerNotAfter()).getTime()).to.equal(second.notAfter.getTime());

    // CA down: failures are reported, the current certificate stays in service past its expiry.
    await server!.close();
    await once(m, 'fetch-failed');
    await new Promise((r) => setTimeout(r, Math.max(0, second.notAfter.getTime() - Date.now() + 300)));
    expect(m.ready).to.equal(true);
    expect(m.current()).to.equal(second);

    await startCa(); // same port
    const [third] = await once<[WorkloadCertificate]>(m, 'certificate');
    expect(third.notAfter.getTime()).to.be.above(second.notAfter.getTime());
    expect((await peerNotAfter()).getTime()).to.equal(third.notAfter.getTime());
    m.stop();
    await new Promise<void>((r) => tlsServer.close(() => r()));
  });

  it('renews at once when the mounted root changes (the CA switched to a plugged cacerts)', async () => {
    const rootPath = join(dir, 'root-cert.pem');
    writeFileSync(rootPath, ca.rootCertPem);
    const m = manager({ caRootPem: undefined, caRootPath: rootPath, rootWatchIntervalMs: 50 });
    m.start();
    const first = await m.whenReady();
    expect(pemCount(first.rootPem)).to.equal(1);
    const { material } = pluggedMaterialFixture();
    ca.setBundle(loadCaBundle(material, 'plugged'));
    const next = once<[WorkloadCertificate, string]>(m, 'certificate');
    writeFileSync(rootPath, ca.rootCertPem); // what kubelet does with the republished ConfigMap
    const [cert, reason] = await next;
    expect(reason).to.equal('rotation');
    // Trusts the new root and the replaced one; the leaf now chains to the plugged root.
    expect(pemCount(cert.rootPem)).to.equal(2);
    const chain = cert.certChainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
    expect(chain).to.have.length(2);
    expect(
      new X509Certificate(chain[1]!).verify(new X509Certificate(material.rootCertPem).publicKey),
    ).to.equal(true);
    m.stop();
  });

  it('whenReady rejects when stopped before the first certificate', async () => {
    const m = manager({ caAddress: '127.0.0.1:1' });
    m.start();
    const p = m.whenReady();
    m.stop();
    let error: unknown;
    await p.catch((e) => {
      error = e;
    });
    expect(String(error)).to.match(/stopped before ready/);
  });
});
