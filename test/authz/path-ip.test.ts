import { expect } from 'chai';
import { Cidr, normalizeRequestTarget, PathTemplate, parseIpInto, pathOf } from '../../src/authz/index.js';

describe('authz/path: normalization (Istio "Authorization Policy Normalization")', () => {
  const cases: [string, string, string | null][] = [
    // [mode, input, expected]
    ['BASE', '/status/200', '/status/200'],
    ['BASE', '/a/../b', '/b'],
    ['BASE', '/public/./data/abc/../xyz', '/public/data/xyz'],
    ['BASE', '/some%2fdata/%61%62%63', '/some%2fdata/abc'],
    ['BASE', '/%2e%2e/admin', '/admin'],
    ['BASE', '/a/%2E%2E/b', '/b'],
    ['BASE', '/some\\data', '/some/data'],
    ['BASE', '/a//b', '/a//b'],
    ['BASE', '/a%00b', null],
    ['BASE', '/q/../r?x=/../y', '/r?x=/../y'],
    ['BASE', '/a/%7euser', '/a/~user'],
    ['BASE', '/a/%20b', '/a/%20b'],
    ['MERGE_SLASHES', '/some//data///abc', '/some/data/abc'],
    ['MERGE_SLASHES', '/a/..//b', '/b'],
    ['DECODE_AND_MERGE_SLASHES', '/a%2fb', '/a/b'],
    ['DECODE_AND_MERGE_SLASHES', '/a%5C..%5Cadmin', '/admin'],
    ['DECODE_AND_MERGE_SLASHES', '/a%2F%2Fb', '/a/b'],
    ['NONE', '/a/../b', '/a/../b'],
    ['NONE', '/a%00', null],
  ];
  for (const [mode, input, expected] of cases) {
    it(`${mode}: ${input} -> ${expected}`, () => {
      expect(normalizeRequestTarget(input, mode as 'BASE')).to.equal(expected);
    });
  }

  it('returns the same string when there is nothing to do', () => {
    const t = '/api/v1/users?id=7';
    expect(normalizeRequestTarget(t)).to.equal(t);
  });

  it('pathOf drops the query and fragment', () => {
    expect(pathOf('/a/b?c=d')).to.equal('/a/b');
    expect(pathOf('/a#frag')).to.equal('/a');
    expect(pathOf('/a')).to.equal('/a');
  });
});

describe('authz/path: templates', () => {
  it('{*} is one non-empty segment of URI characters, {**} anything incl. slashes', () => {
    const t = new PathTemplate('/v1/{*}/items/{**}');
    expect(t.matches('/v1/shop/items/')).to.equal(true);
    expect(t.matches('/v1/shop/items/a/b.json')).to.equal(true);
    expect(t.matches('/v1/a/b/items/')).to.equal(false);
    expect(t.matches('/v1//items/')).to.equal(false);
    expect(new PathTemplate('/{**}').matches('/')).to.equal(true);
    expect(new PathTemplate('/{**}.css').matches('/a/b/c.css')).to.equal(true);
    expect(new PathTemplate('/{**}.css').matches('/a/b/c.js')).to.equal(false);
    expect(new PathTemplate('/{*}').matches('/a?b')).to.equal(false);
  });
});

describe('authz/ip', () => {
  const addr = new Uint32Array(4);
  it('parses IPv4, IPv6, IPv4-mapped and zones; rejects junk', () => {
    expect(parseIpInto('10.1.2.3', addr)).to.equal(4);
    expect(addr[0]).to.equal(0x0a010203);
    expect(parseIpInto('::ffff:10.1.2.3', addr)).to.equal(4);
    expect(addr[0]).to.equal(0x0a010203);
    expect(parseIpInto('2001:db8::1', addr)).to.equal(6);
    expect([...addr]).to.deep.equal([0x20010db8, 0, 0, 1]);
    expect(parseIpInto('fe80::1%eth0', addr)).to.equal(6);
    expect(parseIpInto('::', addr)).to.equal(6);
    expect(parseIpInto('1::2:3.4.5.6', addr)).to.equal(6);
    for (const bad of ['', '1.2.3', '256.1.1.1', '1.2.3.4.5', 'a::b::c', '12345::', 'x', '1.2.3.4/8'])
      expect(parseIpInto(bad, addr), bad).to.equal(0);
  });

  it('CIDR containment for both families, /0 and host routes', () => {
    const check = (cidr: string, ip: string) => {
      const fam = parseIpInto(ip, addr);
      return Cidr.parse(cidr).contains(fam, addr);
    };
    expect(check('10.0.0.0/8', '10.255.1.1')).to.equal(true);
    expect(check('10.0.0.0/8', '11.0.0.1')).to.equal(false);
    expect(check('0.0.0.0/0', '1.2.3.4')).to.equal(true);
    expect(check('192.168.1.7', '192.168.1.7')).to.equal(true);
    expect(check('192.168.1.7', '192.168.1.8')).to.equal(false);
    expect(check('2001:db8::/32', '2001:db8:ffff::1')).to.equal(true);
    expect(check('2001:db8::/33', '2001:db8:ffff::1')).to.equal(false);
    expect(check('2001:db8::/32', '10.0.0.1')).to.equal(false);
    expect(check('::ffff:10.0.0.0/104', '10.3.3.3')).to.equal(true);
    expect(() => Cidr.parse('10.0.0.0/40')).to.throw();
  });
});
