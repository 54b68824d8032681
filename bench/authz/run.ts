/**
 * Authorization and JWT benchmark (issue #6 target: authorize() with 100 policies <= 50 µs).
 *   npx tsx bench/authz/run.ts
 * Prints µs per authorize() call (p50/p99 over individually timed calls) for HTTP and TCP
 * requests against 100 mixed policies, and JWT verifications per second with a cached key set
 * (no verified-token cache) and with the token cache.
 */
import { availableParallelism, loadavg } from 'node:os';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { AuthzAttributes, AuthzDecision, AuthzEngine, RequestAuthenticator } from '../../src/authz/index.js';
import type { AuthzPolicy, AuthzRule } from '../../src/tables/security.js';
import { percentile } from '../lib.js';

/** 100 policies: 60 ALLOW, 30 DENY, 10 AUDIT, every field kind, none matching the probe early. */
function policies(): AuthzPolicy[] {
  const out: AuthzPolicy[] = [];
  for (let i = 0; i < 100; i++) {
    const action = i < 60 ? 'ALLOW' : i < 90 ? 'DENY' : 'AUDIT';
    const rules: AuthzRule[] = [
      {
        from: [
          {
            source: {
              principals: [`cluster.local/ns/team-${i}/sa/svc-${i}`, `cluster.local/ns/team-${i}/sa/*`],
            },
          },
          { source: { namespaces: [`ns-${i}`, `ns-${i}-*`], ipBlocks: [`10.${i}.0.0/16`] } },
        ],
        to: [
          { operation: { methods: ['GET', 'HEAD'], paths: [`/api/v${i}/*`, `/svc-${i}/{*}/items/{**}`] } },
          { operation: { hosts: [`svc-${i}.example.com`, `*.svc-${i}.internal`], ports: [`${9000 + i}`] } },
        ],
        when: [
          { key: `request.headers[x-tenant-${i % 7}]`, values: [`t-${i}`, `t-${i}-*`] },
          { key: 'request.auth.claims[groups]', values: [`group-${i}`] },
        ],
      },
      {
        from: [
          { source: { requestPrincipals: [`https://issuer-${i}.example/*`], notIpBlocks: ['192.0.2.0/24'] } },
        ],
        to: [{ operation: { notPaths: ['/healthz', '/readyz'], methods: ['POST'] } }],
        when: [{ key: 'source.namespace', values: [`ns-${i}`] }],
      },
    ];
    out.push({ name: `policy-${i}`, namespace: i % 2 ? 'shop' : 'istio-system', action, rules });
  }
  // the probe is allowed by the last ALLOW policy only
  out[59]!.rules.push({ to: [{ operation: { paths: ['/orders/*'] } }] });
  return out;
}

function probe(tcp: boolean): AuthzAttributes {
  const a = new AuthzAttributes();
  a.tcp = tcp;
  a.sourceIp = '10.200.3.4';
  a.destinationIp = '10.0.1.7';
  a.destinationPort = 8080;
  a.sourcePrincipal = 'cluster.local/ns/frontend/sa/web';
  if (!tcp) {
    a.method = 'GET';
    a.host = 'orders.shop.svc.cluster.local:8080';
    a.path = '/orders/123';
    a.headers = ['host', a.host, 'user-agent', 'bench', 'x-tenant-3', 'acme', 'accept', '*/*'];
    a.requestPrincipal = 'https://issuer.example/alice';
    a.claims = { iss: 'https://issuer.example', sub: 'alice', groups: ['eng', 'ops'] };
  }
  return a;
}

interface Timing {
  p50: number;
  p99: number;
  mean: number;
  /** CPU time per call (user + system), robust when the machine is shared. */
  cpu: number;
}

function timeAuthorize(engine: AuthzEngine, a: AuthzAttributes, n: number): Timing {
  const out = new AuthzDecision();
  for (let i = 0; i < 20_000; i++) engine.authorize(a, out); // warm-up (JIT)
  // performance.now() (a double, no allocation) rather than hrtime.bigint(), so the timer
  // itself does not feed the garbage collector.
  const samples = new Float64Array(n);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    engine.authorize(a, out);
    samples[i] = (performance.now() - s) * 1000;
  }
  const total = (performance.now() - t0) * 1000;
  const c = process.cpuUsage(c0);
  const sorted = Array.from(samples).sort((x, y) => x - y);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: total / n,
    cpu: (c.user + c.system) / n,
  };
}

async function jwtRate(alg: 'ES256' | 'RS256', cacheSize: number, seconds: number): Promise<number> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg };
  const auth = new RequestAuthenticator(
    [{ issuer: 'https://issuer.example', jwks: JSON.stringify({ keys: [jwk] }) }],
    {
      cacheSize,
    },
  );
  const token = await new SignJWT({ sub: 'alice', groups: ['eng'] })
    .setProtectedHeader({ alg, kid: 'k1' })
    .setIssuer('https://issuer.example')
    .setExpirationTime('1h')
    .sign(privateKey);
  const headers = ['authorization', `Bearer ${token}`];
  let n = 0;
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) {
      const o = await auth.authenticate(headers, '/');
      if (o.status !== 'ok') throw new Error(o.reason);
    }
    n += 100;
  }
  auth.close();
  return n / seconds;
}

const engine = AuthzEngine.compile(policies());
const http = probe(false);
const check = engine.authorize(http);
if (!check.allowed || check.policy !== 'shop/policy-59')
  throw new Error(`unexpected decision: ${check.reason}`);
const n = 200_000;
const h = timeAuthorize(engine, http, n);
const t = timeAuthorize(engine, probe(true), n);
console.log('authorize() with 100 policies (60 ALLOW, 30 DENY, 10 AUDIT; worst case: last ALLOW matches)');
const fmt = (x: Timing) =>
  `p50 ${x.p50.toFixed(2)} µs  p99 ${x.p99.toFixed(2)} µs  mean ${x.mean.toFixed(2)} µs  cpu ${x.cpu.toFixed(2)} µs/call`;
console.log(`  HTTP: ${fmt(h)}`);
console.log(`  TCP:  ${fmt(t)}`);
console.log(
  `  (1-min load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores while measuring)`,
);
console.log('JWT verification (inline key set, i.e. key already cached):');
for (const alg of ['ES256', 'RS256'] as const) {
  const raw = await jwtRate(alg, 0, 2);
  const cached = await jwtRate(alg, 100, 1);
  console.log(
    `  ${alg}: ${Math.round(raw)} verifications/s; with token cache ${Math.round(cached)} requests/s`,
  );
}
