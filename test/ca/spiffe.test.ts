import { expect } from 'chai';
import { parseSpiffeId, serviceAccountFromUsername, spiffeIdFor } from '../../src/ca/spiffe.js';

describe('ca/spiffe', () => {
  it('derives the SPIFFE ID from a TokenReview service-account username', () => {
    const sa = serviceAccountFromUsername('system:serviceaccount:shop:reviews');
    expect(sa).to.deep.equal({ namespace: 'shop', serviceAccount: 'reviews' });
    expect(spiffeIdFor('cluster.local', sa!)).to.equal('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(spiffeIdFor('example.org', { namespace: 'a', serviceAccount: 'b.c-d' })).to.equal(
      'spiffe://example.org/ns/a/sa/b.c-d',
    );
  });

  it('refuses usernames that are not service accounts or could smuggle path segments', () => {
    for (const u of [
      'admin',
      'system:node:worker-1',
      'system:serviceaccount:shop',
      'system:serviceaccount:shop:reviews:extra',
      'system:serviceaccount:shop/x:reviews',
      'system:serviceaccount:Shop:reviews',
      'system:serviceaccount::reviews',
      'system:serviceaccount:shop:re/views',
    ]) {
      expect(serviceAccountFromUsername(u), u).to.equal(undefined);
    }
  });

  it('parses SPIFFE IDs back', () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/reviews')).to.deep.equal({
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'reviews',
    });
    expect(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/reviews/x')).to.equal(undefined);
    expect(parseSpiffeId('https://cluster.local/ns/shop/sa/reviews')).to.equal(undefined);
  });
});
