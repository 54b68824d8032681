/**
 * The sidecar in a real pod network namespace: the exact istio-init rules (isthmus iptables),
 * `isthmus proxy sidecar` running as UID 1337 with no config, an app in the pod and a server
 * in an "outside" namespace. App -> outside and outside -> app both flow through the proxy
 * (passthrough by SO_ORIGINAL_DST; inbound reaches the app from 127.0.0.6) and are counted in
 * istio_tcp_connections_opened_total. Needs root; everything lives in namespaces created here
 * (10.124.0.0/29) and deleted afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { ADDON, AS_PROXY, istioInitArgs, must, ROOT, run } from '../netns.js';
import { sample } from './tcp-helpers.js';

const SUFFIX = `${process.pid % 100000}`;
const POD = `isthmus-sc-pod-${SUFFIX}`;
const OUT = `isthmus-sc-out-${SUFFIX}`;
const POD_IP = '10.124.0.1';
const OUT_IP = '10.124.0.2';
/** The istio-init container's command from an injected pod spec. */
const INIT_ARGS = istioInitArgs();

// A server-first app: greets with its name and the peer address it sees, then echoes.
const SERVER = `
const net = require('node:net');
const [name, port] = process.argv.slice(1);
net.createServer({ allowHalfOpen: true }, (s) => {
  s.write(JSON.stringify({ name, remote: s.remoteAddress }) + '\\n');
  s.on('data', (d) => s.write(d));
  s.on('end', () => s.end());
  s.on('error', () => {});
}).listen(Number(port), '0.0.0.0', () => process.stdout.write('ready\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
setTimeout(() => process.exit(0), 180000).unref();
`;

// Sends "ping", half-closes, prints what came back (or the error), within 5 s.
const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
let data = '';
const done = (t) => { process.stdout.write(t); process.exit(0); };
const s = net.connect({ host, port: Number(port), allowHalfOpen: true });
s.setEncoding('utf8');
s.on('connect', () => s.end('ping'));
s.on('data', (c) => { data += c; });
s.on('end', () => done(data));
s.on('error', (e) => done('ERROR ' + (e.code || e.message)));
setTimeout(() => done('ERROR timeout ' + data), 5000);
`;

// HTTP request from inside a namespace: prints "<status> <body>".
const HTTP = `
const http = require('node:http');
const [url, method] = process.argv.slice(1);
const req = http.request(url, { method: method || 'GET' }, (res) => {
  let b = '';
  res.on('data', (c) => { b += c; });
  res.on('end', () => { process.stdout.write(res.statusCode + ' ' + b); process.exit(0); });
});
req.on('error', (e) => { process.stdout.write('ERROR ' + e.message); process.exit(0); });
req.end();
setTimeout(() => { process.stdout.write('ERROR timeout'); process.exit(0); }, 5000);
`;

function inNs(ns: string, script: string, args: string[]): string {
  return run(['ip', 'netns', 'exec', ns, process.execPath, '-e', script, ...args], 15_000).stdout.trim();
}

function spawnReady(cmd: string[], re: RegExp, what: string): Promise<ChildProcess> {
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready in 30 s:\n${text}`)), 30_000);
    const onData = (d: Buffer) => {
      text += d.toString();
      if (re.test(text)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${text}`));
    });
  });
}

describe('sidecar passthrough in a pod network namespace @integration', function () {
  this.timeout(120_000);
  const children: ChildProcess[] = [];
  let proxy: ChildProcess | undefined;

  before(async function () {
    this.timeout(90_000);
    // Fail, not skip: without root this test cannot show capture + passthrough working.
    if (process.getuid?.() !== 0) {
      throw new Error(
        'sidecar netns test needs root (ip netns, iptables); run it as root or in a privileged container',
      );
    }
    for (const tool of ['ip', 'iptables-restore', 'setpriv']) {
      if (run(['sh', '-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0)
        throw new Error(
          `sidecar netns test needs \`${tool}\` (Debian: apt-get install iproute2 iptables util-linux)`,
        );
    }
    if (!existsSync(ADDON)) throw new Error(`native addon missing at ${ADDON}: run \`npm run build:native\``);

    must(['ip', 'netns', 'add', POD]);
    must(['ip', 'netns', 'add', OUT]);
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
    for (const [ns, dev, addr] of [
      [POD, 'veth-pod', `${POD_IP}/29`],
      [OUT, 'veth-out', `${OUT_IP}/29`],
    ] as const) {
      must(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev]);
      must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    const init = run(
      ['ip', 'netns', 'exec', POD, process.execPath, 'bin/isthmus.js', 'iptables', ...INIT_ARGS],
      60_000,
    );
    if (init.status !== 0)
      throw new Error(`isthmus iptables failed (${init.status}): ${init.stderr}${init.stdout}`);

    children.push(
      await spawnReady(
        ['ip', 'netns', 'exec', POD, process.execPath, '-e', SERVER, 'pod-app', '8080'],
        /ready/,
        'pod app',
      ),
    );
    children.push(
      await spawnReady(
        ['ip', 'netns', 'exec', OUT, process.execPath, '-e', SERVER, 'outside', '9090'],
        /ready/,
        'outside server',
      ),
    );
    proxy = await spawnReady(
      [
        'ip',
        'netns',
        'exec',
        POD,
        ...AS_PROXY,
        process.execPath,
        'bin/isthmus.js',
        'proxy',
        'sidecar',
        '--domain',
        'shop.svc.cluster.local',
        '--proxyLogLevel=info',
      ],
      /sidecar started/,
      'isthmus proxy sidecar',
    );
    children.push(proxy);
  });

  after(function () {
    this.timeout(30_000);
    for (const child of children) {
      child.stdin?.end();
      child.kill('SIGKILL');
    }
    for (const ns of [POD, OUT]) run(['ip', 'netns', 'del', ns]);
  });

  function metrics(): string {
    return inNs(POD, HTTP, ['http://127.0.0.1:15090/stats/prometheus']);
  }

  it('reports ready on 15021 and 15020 with no config', () => {
    expect(inNs(POD, HTTP, ['http://127.0.0.1:15021/healthz/ready'])).to.match(/^200/);
    expect(inNs(POD, HTTP, [`http://${POD_IP}:15020/healthz/ready`])).to.match(/^200/);
  });

  it("passes the app's outbound connection through the proxy to the outside server", () => {
    const before = sample(metrics(), 'istio_tcp_connections_opened_total', {
      destination_service_name: 'PassthroughCluster',
    });
    const out = inNs(POD, CLIENT, [OUT_IP, '9090']);
    const [hello, echo] = out.split('\n');
    expect(JSON.parse(hello!)).to.deep.include({ name: 'outside' });
    expect(echo).to.equal('ping');
    const text = metrics();
    expect(
      sample(text, 'istio_tcp_connections_opened_total', {
        destination_service_name: 'PassthroughCluster',
        reporter: 'source',
      }),
    ).to.equal(before + 1);
    expect(
      sample(text, 'istio_tcp_received_bytes_total', { destination_service_name: 'PassthroughCluster' }),
    ).to.be.greaterThanOrEqual(4);
  });

  it('passes an inbound connection to the app, arriving from 127.0.0.6', () => {
    const before = sample(metrics(), 'istio_tcp_connections_opened_total', {
      destination_service_name: 'InboundPassthroughClusterIpv4',
    });
    const out = inNs(OUT, CLIENT, [POD_IP, '8080']);
    const [hello, echo] = out.split('\n');
    expect(JSON.parse(hello!)).to.deep.equal({ name: 'pod-app', remote: '127.0.0.6' });
    expect(echo).to.equal('ping');
    expect(
      sample(metrics(), 'istio_tcp_connections_opened_total', {
        destination_service_name: 'InboundPassthroughClusterIpv4',
        reporter: 'destination',
      }),
    ).to.equal(before + 1);
  });

  it('still lets the app reach itself directly and exits 0 on POST /quitquitquit', async () => {
    expect(JSON.parse(inNs(POD, CLIENT, ['127.0.0.1', '8080']).split('\n')[0]!)).to.deep.include({
      name: 'pod-app',
    });
    const exited = new Promise<number | null>((r) => proxy!.once('exit', (code) => r(code)));
    expect(inNs(POD, HTTP, ['http://127.0.0.1:15020/quitquitquit', 'POST'])).to.match(/^200/);
    expect(await exited).to.equal(0);
  });
});
