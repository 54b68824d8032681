/**
 * The commands an injected pod runs: `isthmus proxy sidecar` (as a real process: starts with
 * Istio's flags, reports ready, exits 0 on /quitquitquit) and `isthmus wait` (the postStart
 * hook of holdApplicationUntilProxyStarts). Loopback only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { getText } from './helpers.js';

function isthmus(args: string[]): ChildProcess {
  return spawn(process.execPath, ['bin/isthmus.js', ...args], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function finished(child: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
}

function waitForLine(child: ChildProcess, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}:\n${text}`)), ms);
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = re.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stderr!.on('data', onData);
    child.stdout!.on('data', onData);
  });
}

describe('isthmus wait', () => {
  it('returns 0 once the URL answers 200', async function () {
    this.timeout(20_000);
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.statusCode = hits < 3 ? 503 : 200;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const r = await finished(
      isthmus([
        'wait',
        `--url=http://127.0.0.1:${port}/healthz/ready`,
        '--period-millis',
        '100',
        '--timeout-seconds',
        '15',
      ]),
    );
    server.close();
    expect(r.code, r.err).to.equal(0);
    expect(hits).to.equal(3);
    expect(r.out).to.contain('is ready');
  });

  it('exits 1 with a message when the URL never gets ready', async function () {
    this.timeout(20_000);
    const r = await finished(
      isthmus(['wait', '--url=http://127.0.0.1:1/', '--timeoutSeconds', '1', '--periodMillis', '100']),
    );
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/not ready after 1 s/);
  });
});

describe('isthmus proxy sidecar (process)', () => {
  let child: ChildProcess | undefined;
  after(() => child?.kill('SIGKILL'));

  it('starts with Istio-style flags, reports ready, and exits 0 on POST /quitquitquit', async function () {
    this.timeout(30_000);
    child = isthmus([
      'proxy',
      'sidecar',
      '--domain',
      'shop.svc.cluster.local',
      '--proxyLogLevel=info',
      '--proxyComponentLogLevel=misc:error',
      '--concurrency',
      '2',
      '--bind-address',
      '127.0.0.1',
      '--no-ipv6',
      '--outbound-port',
      '0',
      '--inbound-port',
      '0',
      '--admin-port',
      '0',
      '--stats-port',
      '0',
      '--health-port',
      '0',
      '--status-port',
      '0',
    ]);
    const exited = finished(child);
    const m = await waitForLine(child, /health (\d+), status (\d+)/, 20_000);
    const health = Number(m[1]);
    const status = Number(m[2]);
    const ready = await finished(
      isthmus(['wait', `--url=http://127.0.0.1:${health}/healthz/ready`, '--timeout-seconds', '10']),
    );
    expect(ready.code, ready.err).to.equal(0);
    expect((await getText(status, '/healthz/ready')).status).to.equal(200);
    expect((await getText(status, '/quitquitquit', 'POST')).status).to.equal(200);
    const r = await exited;
    child = undefined;
    expect(r.code, r.err).to.equal(0);
  });
});
