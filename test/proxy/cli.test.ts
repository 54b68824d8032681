import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { C1, ep, send, startUpstream, tables, type Upstream } from './helpers.js';

/** Runs `isthmus proxy` (this command's register() on a bare program) in a child process. */
function runCli(args: string[]): ChildProcess {
  const script = `
    import { Command } from 'commander';
    import { register } from './src/cli/commands/proxy.ts';
    const program = new Command('isthmus');
    register(program);
    await program.parseAsync(['node', 'isthmus', ...JSON.parse(process.argv[1])]);
  `;
  return spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(args)],
    {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

function waitFor(child: ChildProcess, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}; stderr:\n${err}`)), ms);
    const onData = (d: Buffer) => {
      err += d.toString();
      const m = re.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        resolve(m);
      }
    };
    child.stderr!.on('data', onData);
  });
}

describe('isthmus proxy CLI (static config file, like envoy -c)', () => {
  let up: Upstream;
  let dir: string;
  let child: ChildProcess | undefined;

  before(async () => {
    up = await startUpstream('v1');
    dir = mkdtempSync(join(tmpdir(), 'isthmus-proxy-cli-'));
  });
  after(async () => {
    child?.kill('SIGKILL');
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the file config, reloads it on change, rejects a bad edit, exits on SIGTERM', async function () {
    this.timeout(20_000);
    const file = join(dir, 'routes.json');
    const config = tables([{ forward: { clusters: [{ cluster: C1, weight: 1 }] } }], { [C1]: [ep(up)] });
    writeFileSync(file, JSON.stringify(config));
    child = runCli([
      'proxy',
      '--config',
      file,
      '--watch',
      '--admin-port',
      'off',
      '--stats-port',
      'off',
      '--health-port',
      'off',
      '--bind-address',
      '127.0.0.1',
      '--listener-port',
      'virtualOutbound=0',
    ]);
    const m = await waitFor(child, /listener virtualOutbound .* on 127\.0\.0\.1:(\d+)/, 15_000);
    const port = Number(m[1]);
    expect((await send(port)).body).to.equal('v1');

    const next = { ...config, version: 'v2' };
    next.routeConfigs[0]!.virtualHosts[0]!.routes = [{ directResponse: { status: 200, body: 'reloaded' } }];
    writeFileSync(file, JSON.stringify(next));
    await waitFor(child, /config v2 applied/, 8000);
    expect((await send(port)).body).to.equal('reloaded');

    writeFileSync(file, JSON.stringify({ ...next, version: 'v3', clusters: 'nope' }));
    const rejected = await waitFor(child, /rejected:\n(.*)/, 8000);
    expect(rejected[1]).to.contain('clusters');
    expect((await send(port)).body).to.equal('reloaded');

    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    child = undefined;
  });
});
