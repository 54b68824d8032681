import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DirectorySource, type SnapshotEvent } from '../../src/config-source/index.js';

const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 10.96.0.11
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
`;
const vs = (weight: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${weight}
    - destination: {host: reviews, subset: v2}
      weight: ${100 - weight}
`;

function next(src: DirectorySource, timeoutMs = 3000): Promise<SnapshotEvent> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no snapshot event')), timeoutMs);
    const off = src.onSnapshot((e) => {
      clearTimeout(t);
      off();
      resolve(e);
    });
  });
}

const weightOf = (e: SnapshotEvent) => e.snapshot.virtualServices[0]?.spec.http?.[0]?.route?.[0]?.weight;

describe('DirectorySource (local mode config)', () => {
  let dir: string;
  let src: DirectorySource;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'isthmus-src-'));
    mkdirSync(join(dir, 'routing'));
    writeFileSync(join(dir, 'services.yaml'), SERVICE);
    writeFileSync(join(dir, 'routing', 'reviews.yaml'), vs(80));
    src = new DirectorySource(dir, { debounceMs: 20 });
  });
  afterEach(async () => {
    await src.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory recursively into a snapshot', async () => {
    const first = await src.start();
    expect(first.rejected).to.deep.equal([]);
    expect(first.snapshot.services.map((s) => s.hostname)).to.deep.equal(['reviews.shop.svc.cluster.local']);
    expect(weightOf(first)).to.equal(80);
  });

  it('picks up an edit through the watcher, debounced into one snapshot', async () => {
    await src.start();
    const changed = next(src);
    writeFileSync(join(dir, 'routing', 'reviews.yaml'), vs(50));
    writeFileSync(join(dir, 'routing', 'reviews.yaml'), vs(10));
    const e = await changed;
    expect(weightOf(e)).to.equal(10);
    expect(e.snapshot.version).to.not.equal(undefined);
  });

  it('keeps the last good version of an invalid object and reports why (src/validation wording)', async () => {
    const first = await src.start();
    writeFileSync(join(dir, 'routing', 'reviews.yaml'), vs(150)); // weight -50 on the second destination
    const e = src.reload();
    expect(e.snapshot.version).to.equal(first.snapshot.version);
    expect(e.rejected).to.have.length(1);
    expect(e.rejected[0]!.keptPrevious).to.equal(true);
    expect(e.rejected[0]!.messages.join('\n')).to.match(
      /VirtualService shop\/reviews: spec\.http\[0\]\.route\[1\]\.weight/,
    );
  });

  it('keeps the objects of a file that stops parsing, and drops those of a deleted file', async () => {
    await src.start();
    writeFileSync(join(dir, 'services.yaml'), 'kind: Service\n  bad: [indent');
    const broken = src.reload();
    expect(broken.snapshot.services).to.have.length(1);
    expect(broken.rejected[0]!.source).to.match(/services\.yaml$/);
    rmSync(join(dir, 'services.yaml'));
    expect(src.reload().snapshot.services).to.have.length(0);
  });
});
