import { expect } from 'chai';
import { clientAddressFromXff, numTrustedProxiesFromEnv } from '../../src/authz/xff.js';

describe('authz/xff: remote.ip from X-Forwarded-For (Envoy, use_remote_address false)', () => {
  it('takes the rightmost entry when no proxy is trusted', () => {
    expect(clientAddressFromXff('203.0.113.7', 0)).to.equal('203.0.113.7');
    expect(clientAddressFromXff('203.0.113.7, 10.0.0.1', 0)).to.equal('10.0.0.1');
    expect(clientAddressFromXff('203.0.113.7,2001:db8::1', 0)).to.equal('2001:db8::1');
  });

  it('skips numTrustedProxies entries from the right', () => {
    expect(clientAddressFromXff('203.0.113.7, 10.0.0.1', 1)).to.equal('203.0.113.7');
    expect(clientAddressFromXff('1.1.1.1, 203.0.113.7, 10.0.0.1, 10.0.0.2', 2)).to.equal('203.0.113.7');
  });

  it('falls back to the connection (empty result) when the header is short, absent or not an IP', () => {
    expect(clientAddressFromXff('10.0.0.1', 1)).to.equal('');
    expect(clientAddressFromXff(undefined, 0)).to.equal('');
    expect(clientAddressFromXff('', 0)).to.equal('');
    expect(clientAddressFromXff('unknown', 0)).to.equal('');
    expect(clientAddressFromXff('203.0.113.7, ', 0)).to.equal('');
  });

  it('reads gatewayTopology.numTrustedProxies from PROXY_CONFIG and names what is wrong', () => {
    expect(numTrustedProxiesFromEnv(undefined)).to.equal(0);
    expect(numTrustedProxiesFromEnv('{"concurrency": 2}')).to.equal(0);
    expect(numTrustedProxiesFromEnv('{"gatewayTopology": {"numTrustedProxies": 2}}')).to.equal(2);
    expect(numTrustedProxiesFromEnv('gatewayTopology:\n  numTrustedProxies: "1"\n')).to.equal(1);
    expect(() => numTrustedProxiesFromEnv('{"gatewayTopology": {"numTrustedProxies": -1}}')).to.throw(
      'PROXY_CONFIG: gatewayTopology.numTrustedProxies: expected an integer from 0 to 64, got -1',
    );
    expect(() => numTrustedProxiesFromEnv('{"gatewayTopology": 3}')).to.throw(
      'PROXY_CONFIG: gatewayTopology: expected a mapping',
    );
    expect(() => numTrustedProxiesFromEnv('{')).to.throw(/^PROXY_CONFIG: not JSON or YAML/);
  });
});
