/**
 * Issue #6 "Done when": a badly signed JWT is refused with 401 by a real SidecarProxy (the
 * expired case is in authz.test.ts): a well-formed token for the configured issuer and kid,
 * signed with a key that is not in the key set.
 */
import { expect } from 'chai';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { SidecarProxy } from '../../src/proxy/index.js';
import type { ProxyTables } from '../../src/tables/index.js';
import { ep, send, startProxy, startUpstream, type Upstream } from './helpers.js';

const CLUSTER = 'inbound|9080||';
const ISSUER = 'https://issuer.test';

describe('proxy: a JWT signed by a key outside the key set gets 401', () => {
  let upstream: Upstream;
  let proxy: SidecarProxy | undefined;

  before(async () => {
    upstream = await startUpstream('reviews');
  });
  after(async () => {
    await proxy?.stop(100);
    await upstream.close();
  });

  it('refuses it with 401 "Jwt verification fails" and never forwards it', async () => {
    const trusted = await generateKeyPair('ES256');
    const other = await generateKeyPair('ES256');
    const jwk = await exportJWK(trusted.publicKey);
    const jwks = JSON.stringify({ keys: [{ ...jwk, kid: 'k1', alg: 'ES256', use: 'sig' }] });
    const t: ProxyTables = {
      apiVersion: 'isthmus.io/tables/v1',
      version: 'v1',
      node: { name: 'reviews-v1', namespace: 'shop', app: 'reviews', version: 'v1' },
      listeners: [
        { name: 'virtualInbound', direction: 'inbound', port: 15006, protocol: 'http', routeConfig: 'in' },
      ],
      routeConfigs: [
        {
          name: 'in',
          virtualHosts: [
            {
              name: 'in',
              domains: ['*'],
              routes: [{ name: 'default', forward: { clusters: [{ cluster: CLUSTER, weight: 1 }] } }],
            },
          ],
        },
      ],
      clusters: [{ name: CLUSTER }],
      endpoints: { [CLUSTER]: [ep(upstream)] },
      security: { jwtRules: [{ issuer: ISSUER, jwks }] },
    };
    proxy = await startProxy(t);
    const port = proxy.listenerPort('virtualInbound')!;
    const exp = Math.floor(Date.now() / 1000) + 600;
    const sign = (key: Parameters<SignJWT['sign']>[0]) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(ISSUER)
        .setSubject('alice')
        .setExpirationTime(exp)
        .sign(key);
    const get = async (token: string) =>
      send(port, { path: '/', host: 'reviews:9080', headers: { authorization: `Bearer ${token}` } });

    const good = await get(await sign(trusted.privateKey));
    expect(good.status).to.equal(200);
    const seen = upstream.seen.length;
    const forged = await get(await sign(other.privateKey));
    expect(forged.status).to.equal(401);
    expect(forged.body).to.equal('Jwt verification fails');
    expect(upstream.seen.length).to.equal(seen);
  });
});
