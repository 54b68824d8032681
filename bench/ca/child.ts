/**
 * Server side of bench/ca/run.ts, in its own process so its CPU is measured apart from the
 * client's: `ca` runs the CA endpoint (fake TokenReview), `tls` a mutual-TLS echo-less server.
 * Reports its port by IPC and its CPU time (ms) whenever sent 'cpu'.
 */
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:tls';
import { MeshCa } from '../../src/ca/authority.js';
import { createSelfSignedMaterial, loadCaBundle } from '../../src/ca/bundle.js';
import { startCaServer } from '../../src/ca/server.js';
import { TokenAuthenticator } from '../../src/ca/token-review.js';
import { createLogger } from '../../src/util/log.js';

const send = (m: unknown) => process.send?.(m);
process.on('message', (m) => {
  if (m === 'cpu') {
    const u = process.cpuUsage();
    send({ cpuMs: (u.user + u.system) / 1000 });
  }
});
process.on('disconnect', () => process.exit(0));

if (process.argv[2] === 'ca') {
  const ca = new MeshCa(loadCaBundle(createSelfSignedMaterial('cluster.local'), 'self-signed'), {
    trustDomain: 'cluster.local',
  });
  const log = createLogger('bench');
  log.silent = true;
  const server = await startCaServer({
    ca,
    authenticator: new TokenAuthenticator({
      review: async () => ({
        authenticated: true,
        audiences: ['istio-ca'],
        user: { username: 'system:serviceaccount:bench:client', groups: ['system:serviceaccounts'] },
      }),
    }),
    port: 0,
    host: '127.0.0.1',
    servingNames: ['localhost', '127.0.0.1'],
    log,
  });
  send({ port: server.port, rootPem: ca.rootCertPem });
} else {
  const { cert, key, ca } = JSON.parse(process.env.BENCH_TLS ?? '{}') as {
    cert: string;
    key: string;
    ca: string;
  };
  const server = createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.on('error', () => {});
    s.end();
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1', () => send({ port: (server.address() as AddressInfo).port }));
}
