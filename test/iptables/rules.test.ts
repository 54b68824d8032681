import { expect } from 'chai';
import { parseCaptureFlags } from '../../src/iptables/options.js';
import { captureRules, renderRestoreInput } from '../../src/iptables/rules.js';

const ISTIO_INIT = {
  p: '15001',
  z: '15006',
  u: '1337',
  m: 'REDIRECT',
  i: '*',
  x: '',
  b: '*',
  d: '15090,15021,15020',
};

describe('iptables rule generation', () => {
  it("renders istio-init's command as one iptables-restore input", () => {
    expect(renderRestoreInput(parseCaptureFlags(ISTIO_INIT), 4)).to.equal(
      [
        '# isthmus iptables: IPv4 traffic capture (iptables-restore --noflush input)',
        '*nat',
        ':ISTIO_INBOUND - [0:0]',
        ':ISTIO_REDIRECT - [0:0]',
        ':ISTIO_IN_REDIRECT - [0:0]',
        ':ISTIO_OUTPUT - [0:0]',
        '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
        '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
        '-A PREROUTING -p tcp -j ISTIO_INBOUND',
        '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
        '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
        '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
        '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
        '-A OUTPUT -p tcp -j ISTIO_OUTPUT',
        '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
        '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
        '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
        '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
        '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('uses IPv6 loopback and passthrough addresses in the ip6tables variant', () => {
    const text = renderRestoreInput(parseCaptureFlags(ISTIO_INIT), 6);
    expect(text).to.contain('ip6tables-restore');
    expect(text).to.contain('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN');
    expect(text).to.contain(
      '-A ISTIO_OUTPUT -o lo ! -d ::1/128 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
    );
    expect(text).to.contain('-A ISTIO_OUTPUT -d ::1/128 -j RETURN');
    expect(text).not.to.match(/127\.0\.0/);
  });

  it('captures only the listed inbound ports, ignoring -d then', () => {
    const rules = captureRules(parseCaptureFlags({ b: '80,9080', d: '15020' }), 4);
    expect(rules.filter((r) => r.includes('ISTIO_INBOUND'))).to.deep.equal([
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 80 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT',
    ]);
  });

  it('installs no inbound hook when -b is empty and no outbound redirect when -i is empty', () => {
    const rules = captureRules(parseCaptureFlags({ b: '', i: '' }), 4);
    expect(rules.some((r) => r.includes('PREROUTING'))).to.equal(false);
    expect(rules.some((r) => r.endsWith('-j ISTIO_REDIRECT'))).to.equal(false);
    // The proxy's own traffic handling stays, as in istio-iptables.
    expect(rules).to.include('-A OUTPUT -p tcp -j ISTIO_OUTPUT');
  });

  it('orders exclusions before inclusions and keeps each range in its family', () => {
    const opts = parseCaptureFlags({
      i: '10.0.0.0/8,fd00::/8',
      x: '10.96.0.0/12,fd00:1::/64',
      o: '5432,3306',
    });
    const v4 = captureRules(opts, 4);
    const tail4 = v4.slice(v4.indexOf('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN'));
    expect(tail4).to.deep.equal([
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.96.0.0/12 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ]);
    const v6 = captureRules(opts, 6);
    expect(v6).to.include('-A ISTIO_OUTPUT -d fd00:1::/64 -j RETURN');
    expect(v6).to.include('-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT');
    expect(v6.join('\n')).not.to.contain('10.');
  });

  it('emits the owner rules for every UID and GID', () => {
    const rules = captureRules(parseCaptureFlags({ u: '1337,1338', g: '1339' }), 4);
    const owners = rules
      .filter((r) => r.includes('-m owner'))
      .map((r) => /--(uid|gid)-owner (\d+)/.exec(r)?.[0]);
    expect(owners).to.deep.equal([
      ...Array(3).fill('--uid-owner 1337'),
      ...Array(3).fill('--uid-owner 1338'),
      ...Array(3).fill('--gid-owner 1339'),
    ]);
  });

  it('captures the app calling itself when -i explicitly includes loopback', () => {
    const rules = captureRules(parseCaptureFlags({ i: '127.0.0.0/8,10.0.0.0/8' }), 4);
    expect(rules.some((r) => r.includes('! --uid-owner'))).to.equal(false);
    expect(rules).to.include('-A ISTIO_OUTPUT -d 127.0.0.0/8 -j ISTIO_REDIRECT');
  });

  it('honours custom capture ports', () => {
    const rules = captureRules(parseCaptureFlags({ p: '16001', z: '16006' }), 4);
    expect(rules.slice(0, 2)).to.deep.equal([
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006',
    ]);
  });
});
