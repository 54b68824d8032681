/**
 * Mesh mTLS test rig on loopback: an in-process mesh CA (no apiserver), certificate sources
 * the tests control, and a pair of sidecars (client -> server -> app) configured like the
 * compiler would (auto mTLS cluster on the client, inbound capture on the server).
 * Every key here is generated per run and used only in tests.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptCertificate, type WorkloadCertificate } from '../../src/agent/accept.js';
import { MeshCa } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { createCsr, generateWorkloadKey } from '../../src/ca/csr.js';
import { type CaServer, startCaServer } from '../../src/ca/server.js';
import { TokenAuthenticator, type TokenReviewFn } from '../../src/ca/token-review.js';
import type { OriginalDst } from '../../src/iptables/original-dst.js';
import { createLogger } from '../../src/proxy/log.js';
import { Sidecar } from '../../src/proxy/sidecar/index.js';
import type { CertificateSource } from '../../src/proxy/tls/index.js';
import type { ClusterTls, InboundMtls, ProxyTables } from '../../src/tables/index.js';
import { fakeJwt } from '../ca/helpers.js';

export const SPIFFE = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

export function newCa(): MeshCa {
  return new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
    trustDomain: 'cluster.local',
    maxTtlSeconds: 86400,
  });
}

/** A workload certificate signed in-process (what the agent would get from the CA). */
export async function issue(
  ca: MeshCa,
  ns: string,
  sa: string,
  ttlSeconds = 3600,
): Promise<WorkloadCertificate> {
  const key = await generateWorkloadKey();
  const signed = ca.signWorkload(createCsr(key), { namespace: ns, serviceAccount: sa }, ttlSeconds);
  return acceptCertificate({ certChain: signed.certChain, rootCert: signed.rootCert }, key, new Date());
}

/** A certificate source the test drives: `set` delivers (or rotates) a certificate. */
export class ManualCertificates extends EventEmitter implements CertificateSource {
  private cert: WorkloadCertificate | undefined;
  constructor(cert?: WorkloadCertificate) {
    super();
    this.cert = cert;
  }
  current(): WorkloadCertificate | undefined {
    return this.cert;
  }
  set(cert: WorkloadCertificate): void {
    const initial = this.cert === undefined;
    this.cert = cert;
    this.emit('certificate', cert, initial ? 'initial' : 'rotation');
  }
}

/** The CA's HTTPS endpoint with a fake TokenReview (tokens name their service account in `sub`). */
export async function startTestCaServer(
  ca: MeshCa,
): Promise<{ server: CaServer; tokenPath: (ns: string, sa: string) => string }> {
  const review: TokenReviewFn = async (token) => {
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { sub?: string };
    return {
      authenticated: true,
      audiences: ['istio-ca'],
      user: { username: claims.sub ?? '', groups: ['system:serviceaccounts'] },
    };
  };
  const quiet = createLogger('error');
  quiet.silent = true;
  const server = await startCaServer({
    ca,
    authenticator: new TokenAuthenticator({ review }),
    port: 0,
    host: '127.0.0.1',
    servingNames: ['127.0.0.1'],
    log: quiet,
  });
  const dir = mkdtempSync(join(tmpdir(), 'isthmus-mtls-'));
  return {
    server,
    tokenPath: (ns, sa) => {
      const path = join(dir, `${ns}-${sa}.token`);
      const sub = `system:serviceaccount:${ns}:${sa}`;
      writeFileSync(path, fakeJwt({ sub, aud: 'istio-ca', exp: Math.floor(Date.now() / 1000) + 3600 }));
      return path;
    },
  };
}

export const to = (port: number): OriginalDst => ({ address: '127.0.0.1', port, family: 4 });

export async function startSidecar(
  certificates: CertificateSource | undefined,
  originalDst: () => OriginalDst | null,
): Promise<Sidecar> {
  return Sidecar.start({
    logger: createLogger('error'),
    env: {},
    ports: { outbound: 0, inbound: 0, admin: null, stats: null, health: 0, status: null },
    bindAddress: '127.0.0.1',
    ipv6: false,
    drainMs: 100,
    originalDst,
    ...(certificates ? { certificates } : {}),
  });
}

export const SERVICE_PORT = 9080;
export const CLIENT_CLUSTER = 'outbound|9080||reviews.shop.svc.cluster.local';
export const TCP_CLUSTER = 'outbound|5432||db.shop.svc.cluster.local';

/** Client side: HTTP to reviews:9080 and TCP to db:5432 through (auto) mTLS clusters. */
export function clientTables(
  serverPort: number,
  opts: {
    tls?: ClusterTls | null;
    meshed?: boolean;
    maxRequestsPerConnection?: number;
    version?: string;
    /** Upstream protocol of the HTTP cluster (h2 over mTLS between the sidecars). */
    upstreamProtocol?: 'http1' | 'http2';
  } = {},
): ProxyTables {
  const tls: ClusterTls | null =
    opts.tls === undefined
      ? {
          mode: 'ISTIO_MUTUAL',
          auto: true,
          sni: 'outbound_.9080_._.reviews.shop.svc.cluster.local',
          subjectAltNames: [SPIFFE('shop', 'reviews')],
        }
      : opts.tls;
  const endpoint = {
    address: '127.0.0.1',
    port: serverPort,
    ...(opts.meshed === false ? {} : { labels: { 'security.istio.io/tlsMode': 'istio' } }),
    workload: { name: 'reviews-v1', namespace: 'shop', principal: SPIFFE('shop', 'reviews') },
  };
  const cp = opts.maxRequestsPerConnection
    ? { connectionPool: { maxRequestsPerConnection: opts.maxRequestsPerConnection } }
    : {};
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: opts.version ?? 'client-1',
    node: { name: 'productpage-v1', namespace: 'shop', principal: SPIFFE('shop', 'productpage') },
    listeners: [
      { name: 'virtualOutbound', direction: 'outbound', port: 15001, protocol: 'http', routeByPort: true },
      { name: '0.0.0.0_5432', direction: 'outbound', port: 5432, protocol: 'tcp', cluster: TCP_CLUSTER },
    ],
    routeConfigs: [
      {
        name: '9080',
        port: SERVICE_PORT,
        virtualHosts: [
          {
            name: 'reviews',
            domains: ['*'],
            routes: [{ name: 'default', forward: { clusters: [{ cluster: CLIENT_CLUSTER, weight: 100 }] } }],
          },
        ],
      },
    ],
    clusters: [
      {
        name: CLIENT_CLUSTER,
        service: { host: 'reviews.shop.svc.cluster.local', name: 'reviews', namespace: 'shop' },
        ...cp,
        ...(opts.upstreamProtocol ? { upstreamProtocol: opts.upstreamProtocol } : {}),
        ...(tls ? { tls } : {}),
      },
      {
        name: TCP_CLUSTER,
        service: { host: 'db.shop.svc.cluster.local', name: 'db', namespace: 'shop' },
        ...(tls ? { tls: { ...tls, sni: 'outbound_.5432_._.db.shop.svc.cluster.local' } } : {}),
      },
    ],
    endpoints: { [CLIENT_CLUSTER]: [endpoint], [TCP_CLUSTER]: [endpoint] },
  };
}

/** Server side: inbound HTTP to the app port; other ports pass through to the app. */
export function serverTables(appPort: number, inboundMtls?: InboundMtls): ProxyTables {
  const cluster = `inbound|${appPort}||`;
  return {
    apiVersion: 'isthmus.io/tables/v1',
    version: `server-${inboundMtls ? JSON.stringify(inboundMtls) : 'permissive'}`,
    node: { name: 'reviews-v1', namespace: 'shop', principal: SPIFFE('shop', 'reviews') },
    listeners: [
      // auto: HTTP (1.1 or h2) goes to the route config, anything else passes through to the app.
      { name: 'virtualInbound', direction: 'inbound', port: 15006, protocol: 'auto', routeConfig: 'inbound' },
    ],
    routeConfigs: [
      {
        name: 'inbound',
        virtualHosts: [
          {
            name: 'inbound|http|*',
            domains: ['*'],
            routes: [
              { name: cluster, match: { port: appPort }, forward: { clusters: [{ cluster, weight: 100 }] } },
            ],
          },
        ],
      },
    ],
    clusters: [{ name: cluster }],
    endpoints: { [cluster]: [{ address: '127.0.0.1', port: appPort }] },
    ...(inboundMtls ? { inboundMtls } : {}),
  };
}
