/**
 * End-to-end transparent capture: two network namespaces joined by a veth pair, the exact
 * istio-init command run in the "pod" one, and real TCP connections showing where they land.
 * Needs root (network namespaces, iptables). Everything happens inside namespaces created
 * here and deleted in `after`; the 10.123.0.0/29 and fd00:123::/64 test ranges exist only there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { ADDON, istioInitArgs, must, AS_PROXY as PROXY, ROOT, type Run, run } from '../netns.js';

const SUFFIX = `${process.pid % 100000}`;
const POD = `isthmus-pod-${SUFFIX}`;
const OUT = `isthmus-out-${SUFFIX}`;
const POD_IP = '10.123.0.1';
const OUT_IP = '10.123.0.2';
const OUT_IP_2 = '10.123.0.3';
const POD_IP6 = 'fd00:123::1';
const OUT_IP6 = 'fd00:123::2';

/** The istio-init container's command, from an injected pod spec. */
const INIT_ARGS = istioInitArgs();

/** `args` with `flag`'s value replaced (or the flag appended). */
function withFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  return i < 0 ? [...args, flag, value] : [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
}

function isthmusIptables(ns: string, args: string[], as: string[] = []): Run {
  return run(
    ['ip', 'netns', 'exec', ns, ...as, process.execPath, 'bin/isthmus.js', 'iptables', ...args],
    60_000,
  );
}

interface Landing {
  listener?: string;
  dst?: { address?: string; port?: number; family?: number; error?: string };
  error?: string;
}

// Connects, prints what the listener answered (or the error), always within 3 s.
const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const done = (text) => { process.stdout.write(text); process.exit(0); };
const s = net.connect({ host, port: Number(port) });
let data = '';
s.setEncoding('utf8');
s.on('data', (c) => { data += c; });
s.on('end', () => done(data));
s.on('error', (e) => done(JSON.stringify({ error: e.code || e.message })));
setTimeout(() => done(JSON.stringify({ error: 'timeout' })), 3000);
`;

function connect(ns: string, host: string, port: number, as: string[] = []): Landing {
  const r = run(
    ['ip', 'netns', 'exec', ns, ...as, process.execPath, '-e', CLIENT, host, String(port)],
    10_000,
  );
  try {
    return JSON.parse(r.stdout.trim()) as Landing;
  } catch {
    return { error: `client output ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}` };
  }
}

function natRules(ns: string, tool: 'iptables-save' | 'ip6tables-save'): string[] {
  return must(['ip', 'netns', 'exec', ns, tool, '-t', 'nat'])
    .split('\n')
    .filter((l) => l.startsWith('-A') || l.startsWith(':'));
}

/** Starts the listener fixture in `ns` and waits (bounded) for it to report ready. */
function startServer(ns: string, name: string, ports: number[]): Promise<ChildProcess> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '--import',
      'tsx',
      'test/iptables/fixtures/capture-server.ts',
      name,
      ...ports.map(String),
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${name} listeners not ready in 20 s: ${err}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} listeners exited (${code}): ${err}`));
    });
  });
}

describe('transparent capture in a network namespace @integration', function () {
  this.timeout(120_000);
  const servers: ChildProcess[] = [];

  before(async function () {
    this.timeout(90_000);
    // Fail, not skip: a CI run without root must not pass silently with no capture coverage.
    if (process.getuid?.() !== 0) {
      throw new Error(
        'capture test needs root (ip netns, iptables); run it as root or in a privileged container',
      );
    }
    for (const tool of ['ip', 'iptables-restore', 'ip6tables-restore', 'setpriv']) {
      if (run(['sh', '-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0) {
        throw new Error(
          `capture test needs \`${tool}\` (Debian: apt-get install iproute2 iptables util-linux)`,
        );
      }
    }
    if (!existsSync(ADDON)) throw new Error(`native addon missing at ${ADDON}: run \`npm run build:native\``);

    must(['ip', 'netns', 'add', POD]);
    must(['ip', 'netns', 'add', OUT]);
    // Create the veth pair directly between the two namespaces: the host's netns is untouched.
    must([
      'ip',
      'link',
      'add',
      'veth-pod',
      'netns',
      POD,
      'type',
      'veth',
      'peer',
      'name',
      'veth-out',
      'netns',
      OUT,
    ]);
    for (const [ns, dev, addrs] of [
      [POD, 'veth-pod', [`${POD_IP}/29`]],
      [OUT, 'veth-out', [`${OUT_IP}/29`, `${OUT_IP_2}/29`]],
    ] as const) {
      for (const addr of addrs) must(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev]);
      must([
        'ip',
        '-n',
        ns,
        '-6',
        'addr',
        'add',
        ns === POD ? `${POD_IP6}/64` : `${OUT_IP6}/64`,
        'dev',
        dev,
        'nodad',
      ]);
      must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }

    const init = isthmusIptables(POD, INIT_ARGS);
    if (init.status !== 0)
      throw new Error(`isthmus iptables failed (${init.status}): ${init.stderr}${init.stdout}`);

    // Pod: the proxy's two capture listeners, an app port and the agent's (excluded) port.
    servers.push(await startServer(POD, 'pod', [15001, 15006, 8080, 15020]));
    servers.push(await startServer(OUT, 'outside', [8080, 5432]));
  });

  after(function () {
    this.timeout(30_000);
    for (const child of servers) {
      child.stdin?.end();
      child.kill('SIGKILL');
    }
    // Always, even after a failed `before`; errors here would hide the real failure.
    for (const ns of [POD, OUT]) run(['ip', 'netns', 'del', ns]);
  });

  it('installed both families, each hook exactly once', () => {
    for (const tool of ['iptables-save', 'ip6tables-save'] as const) {
      const rules = natRules(POD, tool);
      expect(
        rules.filter((r) => r.startsWith('-A PREROUTING')),
        tool,
      ).to.deep.equal(['-A PREROUTING -p tcp -j ISTIO_INBOUND']);
      expect(
        rules.filter((r) => r.startsWith('-A OUTPUT')),
        tool,
      ).to.deep.equal(['-A OUTPUT -p tcp -j ISTIO_OUTPUT']);
    }
  });

  it("(a) sends the app's outbound connection to 15001 with the original destination recoverable", () => {
    expect(connect(POD, OUT_IP, 8080)).to.deep.include({
      listener: 'pod:15001',
      dst: { address: OUT_IP, port: 8080, family: 4 },
    });
    expect(connect(POD, OUT_IP6, 8080)).to.deep.include({
      listener: 'pod:15001',
      dst: { address: OUT_IP6, port: 8080, family: 6 },
    });
  });

  it('(b) sends inbound connections to the pod IP to 15006 with the original port recoverable', () => {
    expect(connect(OUT, POD_IP, 8080)).to.deep.include({
      listener: 'pod:15006',
      dst: { address: POD_IP, port: 8080, family: 4 },
    });
    expect(connect(OUT, POD_IP6, 9999)).to.deep.include({
      listener: 'pod:15006',
      dst: { address: POD_IP6, port: 9999, family: 6 },
    });
  });

  it('(c) lets the proxy UID 1337 reach the outside directly', () => {
    expect(connect(POD, OUT_IP, 8080, PROXY).listener).to.equal('outside:8080');
    expect(connect(POD, OUT_IP6, 8080, PROXY).listener).to.equal('outside:8080');
  });

  it('(c) lets excluded inbound ports (-d) reach the real listener', () => {
    expect(connect(OUT, POD_IP, 15020).listener).to.equal('pod:15020');
  });

  it('handles loopback: proxy to its own pod IP goes inbound, the app to itself stays direct', () => {
    expect(connect(POD, POD_IP, 8080, PROXY)).to.deep.include({
      listener: 'pod:15006',
      dst: { address: POD_IP, port: 8080, family: 4 },
    });
    expect(connect(POD, POD_IP, 8080).listener).to.equal('pod:8080');
    expect(connect(POD, '127.0.0.1', 8080).listener).to.equal('pod:8080');
  });

  it('(c) re-applying with -x/-o replaces the rules and bypasses excluded ranges and ports', () => {
    const r = isthmusIptables(POD, [...withFlag(withFlag(INIT_ARGS, '-x', `${OUT_IP_2}/32`), '-o', '5432')]);
    expect(r.status, r.stderr).to.equal(0);
    expect(natRules(POD, 'iptables-save').filter((l) => l.startsWith('-A OUTPUT'))).to.have.length(1);
    expect(connect(POD, OUT_IP_2, 8080).listener).to.equal('outside:8080');
    expect(connect(POD, OUT_IP, 5432).listener).to.equal('outside:5432');
    expect(connect(POD, OUT_IP, 8080).listener).to.equal('pod:15001');
  });

  it('fails clearly without privileges and leaves the table untouched', () => {
    const before = natRules(POD, 'iptables-save');
    const r = isthmusIptables(POD, INIT_ARGS, PROXY);
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/permission denied.*NET_ADMIN/i);
    expect(natRules(POD, 'iptables-save')).to.deep.equal(before);
  });
});
