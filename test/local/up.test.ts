/**
 * `isthmus up` end to end with real processes on loopback: the bookinfo sample (a temp copy, so
 * the test can edit its mesh directory), the front page through the sidecars, a live
 * VirtualService change, an invalid edit, and SIGINT leaving no process behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** The real CLI entry, as a user runs `npx isthmus up`. */
const ENTRY = [join(ROOT, 'bin/isthmus.js')];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Up {
  readonly child: ChildProcess;
  output = '';
  exit: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [...ENTRY, 'up', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (b: Buffer) => {
      this.output += b.toString();
    });
    this.child.stderr!.on('data', (b: Buffer) => {
      this.output += b.toString();
    });
    this.exit = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The exit code, or 'timeout' (and a SIGKILL) when it does not exit within `ms`. */
  async exitWithin(ms: number): Promise<number | null | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      this.exit,
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), ms);
      }),
    ]);
    clearTimeout(timer);
    if (code === 'timeout') this.child.kill('SIGKILL');
    return code;
  }

  /** Waits (bounded) until the output matches; returns the match. */
  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < timeoutMs / 50 && Date.now() < deadline; i++) {
      const m = this.output.slice(from).match(re);
      if (m) return m;
      if (this.child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`no ${re} in the output of isthmus up within ${timeoutMs} ms:\n${this.output}`);
  }
}

/** Alive = exists and is not a zombie (a zombie waits for a reaper, it runs nothing). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function page(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

const reviewsVersion = (body: string) => /Reviews \((v\d|-)\)/.exec(body)?.[1];

/** Rewrites mesh/reviews.yaml; `atomic`: a new file renamed over it, as editors and `sed -i` do. */
function writeReviews(meshDir: string, http: string, atomic = false): void {
  const file = join(meshDir, 'reviews.yaml');
  const tmp = join(meshDir, '.reviews.yaml.swp');
  writeFileSync(
    atomic ? tmp : file,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
${http}
`,
  );
  if (atomic) renameSync(tmp, file);
}

describe('isthmus up (local mode, real processes)', function () {
  this.timeout(60_000);
  let dir: string;
  let up: Up;
  let url: string;
  let pids: number[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'isthmus-up-'));
    cpSync(join(ROOT, 'examples/bookinfo'), dir, { recursive: true });
    up = new Up([dir, '--port', '0']);
    await up.waitFor(/Press Ctrl-C to stop/, 40_000);
    url = up.output.match(/front page: (http:\/\/127\.0\.0\.1:\d+\/productpage)/)![1]!;
    pids = [...up.output.matchAll(/^\s+\S+-\d+\s+127\.\d+\.\d+\.\d+\s+127\.0\.0\.1:\d+\s+(\d+)\s/gm)].map(
      (m) => Number(m[1]),
    );
  });

  after(async () => {
    if (up && up.child.exitCode === null) up.child.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints the front page URL, one pod per instance with its sidecar, and the applied config', () => {
    expect(pids).to.have.length(6);
    for (const pod of ['productpage-v1-0', 'details-v1-0', 'reviews-v1-0', 'reviews-v2-0', 'reviews-v3-0'])
      expect(up.output).to.contain(pod);
    expect(up.output).to.match(/http:\/\/127\.0\.0\.\d+:\d+\/stats\/prometheus/);
    expect(up.output).to.contain('VirtualService default/reviews');
    expect(up.output).to.contain('DestinationRule default/reviews');
  });

  it('serves the front page through the sidecars with details and reviews (v1 by the sample config)', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await page(url);
      expect(r.status).to.equal(200);
      expect(r.body).to.contain('William Shakespeare'); // details
      expect(r.body).to.contain('Reviewer1'); // reviews
      expect(reviewsVersion(r.body)).to.equal('v1');
    }
    // Routing by header works end to end (productpage forwards end-user).
    writeReviews(
      join(dir, 'mesh'),
      `    - match: [{headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: reviews, subset: v2}}]
    - route: [{destination: {host: reviews, subset: v1}}]`,
    );
    await up.waitFor(/mesh: config \w+ applied \(VirtualService default\/reviews changed\)/, 10_000);
    const jason = await fetch(url, { headers: { 'end-user': 'jason' }, signal: AbortSignal.timeout(5000) });
    expect(reviewsVersion(await jason.text())).to.equal('v2');
  });

  it('reroutes live: reviews 100% to v3 reaches every front page within seconds', async () => {
    const mark = up.output.length;
    writeReviews(join(dir, 'mesh'), '    - route: [{destination: {host: reviews, subset: v3}}]', true);
    await up.waitFor(/mesh: config \w+ applied/, 10_000, mark);
    let streak = 0;
    const deadline = Date.now() + 10_000;
    for (let i = 0; i < 200 && streak < 10 && Date.now() < deadline; i++) {
      const r = await page(url);
      streak = r.status === 200 && reviewsVersion(r.body) === 'v3' ? streak + 1 : 0;
      if (streak === 0) await sleep(50);
    }
    expect(streak, 'consecutive front pages served by reviews v3').to.equal(10);
    const last = await page(url);
    expect(last.body).to.contain('color:red'); // v3 shows red stars (it calls ratings)
  });

  it('keeps routing and prints the validation error when an edit is invalid', async () => {
    const mark = up.output.length;
    writeReviews(join(dir, 'mesh'), '    - route: [{destination: {host: reviews, subset: v1}, weight: -5}]');
    const m = await up.waitFor(
      /mesh: rejected .*reviews\.yaml.*VirtualService default\/reviews.*weight.*/,
      10_000,
      mark,
    );
    expect(m[0]).to.contain('keeping the last good version');
    await sleep(300);
    for (let i = 0; i < 10; i++) expect(reviewsVersion((await page(url)).body)).to.equal('v3');
  });

  it('stops every app and sidecar on SIGINT and exits 0', async () => {
    expect(pids.every(alive), 'apps running before SIGINT').to.equal(true);
    up.child.kill('SIGINT');
    expect(await up.exitWithin(15_000)).to.equal(0);
    expect(up.output).to.contain('stopped');
    for (let i = 0; i < 20 && pids.some(alive); i++) await sleep(100);
    expect(pids.filter(alive), 'app processes left').to.deep.equal([]);
    const after = await page(url).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(after).to.equal('refused');
  });
});

describe('isthmus up failures', function () {
  this.timeout(30_000);
  let busy: Server | undefined;

  after(() => busy?.close());

  it('exits non-zero with a clear message when the front port is taken', async () => {
    busy = createServer();
    const port = await new Promise<number>((resolve) =>
      busy!.listen(0, '127.0.0.1', () => resolve((busy!.address() as { port: number }).port)),
    );
    const up = new Up([join(ROOT, 'examples/bookinfo'), '--port', String(port)]);
    expect(await up.exitWithin(20_000)).to.equal(1);
    expect(up.output).to.contain(`port ${port} on 127.0.0.1 is in use`);
  });

  it('exits non-zero when the directory has no manifests', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'isthmus-up-empty-'));
    try {
      const up = new Up([empty, '--port', '0']);
      expect(await up.exitWithin(20_000)).to.equal(1);
      expect(up.output).to.match(/no Deployments found/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
