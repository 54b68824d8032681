import { expect } from 'chai';
import { cidrContains, parseCidr } from '../../src/iptables/cidr.js';
import { CaptureFlagError, parseCaptureFlags } from '../../src/iptables/options.js';

describe('iptables capture flags', () => {
  it('parses the istio-init command line', () => {
    const opts = parseCaptureFlags({
      p: '15001',
      z: '15006',
      u: '1337',
      m: 'REDIRECT',
      i: '*',
      x: '',
      b: '*',
      d: '15090,15021,15020',
    });
    expect(opts).to.deep.include({
      outboundPort: 15001,
      inboundPort: 15006,
      proxyUids: [1337],
      proxyGids: [1337],
      mode: 'REDIRECT',
      inboundPorts: '*',
      inboundExcludePorts: [15090, 15021, 15020],
      outboundIncludeRanges: '*',
      outboundExcludeRanges: [],
      outboundExcludePorts: [],
      ipv6: false,
    });
  });

  it('applies istio-iptables defaults and lets -g default to -u', () => {
    const opts = parseCaptureFlags({ u: '1000,1001' });
    expect(opts.outboundPort).to.equal(15001);
    expect(opts.inboundPort).to.equal(15006);
    expect(opts.proxyGids).to.deep.equal([1000, 1001]);
    expect(opts.inboundPorts).to.deep.equal([]);
    expect(opts.outboundIncludeRanges).to.deep.equal([]);
    expect(parseCaptureFlags({ u: '5', g: '7' }).proxyGids).to.deep.equal([7]);
  });

  it('splits CIDR lists, ignoring blanks and keeping both families', () => {
    const opts = parseCaptureFlags({ i: '10.0.0.0/8, ,fd00::/8,', x: '192.168.1.1/32' });
    expect(opts.outboundIncludeRanges).to.deep.equal([
      { family: 4, address: '10.0.0.0', prefix: 8, text: '10.0.0.0/8' },
      { family: 6, address: 'fd00::', prefix: 8, text: 'fd00::/8' },
    ]);
    expect(opts.outboundExcludeRanges.map((c) => c.text)).to.deep.equal(['192.168.1.1/32']);
  });

  it('de-duplicates port lists', () => {
    expect(parseCaptureFlags({ o: '53,53,5432' }).outboundExcludePorts).to.deep.equal([53, 5432]);
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['-p', { p: '0' }, /invalid -p "0"/],
    ['-z', { z: '70000' }, /invalid -z "70000"/],
    ['-p', { p: '15001x' }, /invalid -p/],
    ['-u', { u: 'istio-proxy' }, /invalid -u "istio-proxy".*numeric/],
    ['-u', { u: '' }, /invalid -u ""/],
    ['-g', { g: '-1' }, /invalid -g "-1"/],
    ['-b', { b: '80,http' }, /invalid -b "80,http": "http" is not a port/],
    ['-d', { d: '*' }, /invalid -d "\*"/],
    ['-o', { o: '5432,99999' }, /invalid -o "5432,99999": "99999"/],
    ['-i', { i: '10.0.0.0/33' }, /invalid -i "10.0.0.0\/33"/],
    ['-i', { i: '10.0.0.0' }, /invalid -i "10.0.0.0": "10.0.0.0" is not a CIDR/],
    ['-x', { x: '*' }, /invalid -x "\*"/],
    ['-x', { x: 'fd00::/129' }, /invalid -x/],
    ['-m', { m: 'TPROXY' }, /invalid -m "TPROXY": TPROXY interception is not supported yet/],
    ['-m', { m: 'NONE' }, /invalid -m "NONE"/],
  ];
  for (const [flag, flags, message] of bad) {
    it(`rejects ${flag} ${JSON.stringify(Object.values(flags)[0])} naming the flag and value`, () => {
      let caught: unknown;
      try {
        parseCaptureFlags(flags);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(CaptureFlagError);
      expect((caught as CaptureFlagError).flag).to.equal(flag);
      expect((caught as Error).message).to.match(message);
    });
  }
});

describe('iptables CIDR helpers', () => {
  it('parses IPv4 and IPv6 ranges and rejects junk', () => {
    expect(parseCidr('127.0.0.0/8')).to.deep.include({ family: 4, prefix: 8 });
    expect(parseCidr('::1/128')).to.deep.include({ family: 6, prefix: 128 });
    expect(parseCidr('FD00::/8')?.text).to.equal('fd00::/8');
    for (const junk of ['', '/8', '10.0.0.0/', '10.0.0/8', '10.0.0.0/-1', 'x/8', '10.0.0.0/8/8']) {
      expect(parseCidr(junk), junk).to.equal(undefined);
    }
  });

  it('tests containment for both families', () => {
    expect(cidrContains(parseCidr('127.0.0.0/8')!, '127.0.0.1')).to.equal(true);
    expect(cidrContains(parseCidr('0.0.0.0/0')!, '127.0.0.1')).to.equal(true);
    expect(cidrContains(parseCidr('10.0.0.0/8')!, '127.0.0.1')).to.equal(false);
    expect(cidrContains(parseCidr('127.0.0.0/30')!, '127.0.0.1')).to.equal(true);
    expect(cidrContains(parseCidr('127.0.0.4/30')!, '127.0.0.1')).to.equal(false);
    expect(cidrContains(parseCidr('::/0')!, '::1')).to.equal(true);
    expect(cidrContains(parseCidr('::1/128')!, '::1')).to.equal(true);
    expect(cidrContains(parseCidr('fd00::/8')!, '::1')).to.equal(false);
    expect(cidrContains(parseCidr('::ffff:0:0/96')!, '::ffff:127.0.0.1')).to.equal(true);
    expect(cidrContains(parseCidr('::/0')!, '127.0.0.1')).to.equal(false);
  });
});
