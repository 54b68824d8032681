/** The pure parts of `isthmus up`: manifests -> workloads, the overlay snapshot, local tables. */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'chai';
import { compileForWorkload } from '../../src/compiler/index.js';
import { StaticSource } from '../../src/config-source/index.js';
import { canBind, LoopbackAllocator } from '../../src/local/addresses.js';
import { localTables } from '../../src/local/localize.js';
import { type LocalWorkload, manifestsPath, readManifests } from '../../src/local/manifests.js';
import { baseSnapshot, overlaySnapshot, type PodPlacement, podNameOf } from '../../src/local/pods.js';
import { fingerprint } from '../../src/local/poll.js';

const BOOKINFO = resolve(import.meta.dirname, '..', '..', 'examples', 'bookinfo');

const VS_V3 = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
    - route: [{destination: {host: reviews, subset: v3}}]
`;

function place(workloads: LocalWorkload[]): PodPlacement[] {
  return workloads.map((w, i) => ({ workload: w, podName: podNameOf(w, 0), ip: `127.0.9.${i + 2}` }));
}

describe('isthmus up: manifests, snapshot and tables', () => {
  const m = readManifests(manifestsPath(BOOKINFO), BOOKINFO);
  const byName = (n: string) => m.workloads.find((w) => w.identity.name === n)!;

  it('derives one workload per Deployment with labels, service account, script and env', () => {
    expect(m.workloads.map((w) => w.identity.name).sort()).to.deep.equal([
      'details-v1',
      'productpage-v1',
      'ratings-v1',
      'reviews-v1',
      'reviews-v2',
      'reviews-v3',
    ]);
    const r3 = byName('reviews-v3');
    expect(r3.identity).to.deep.include({
      namespace: 'default',
      serviceAccount: 'bookinfo-reviews',
      labels: { app: 'reviews', version: 'v3' },
    });
    expect(r3.argv).to.deep.equal([process.execPath, join(BOOKINFO, 'reviews.mjs')]);
    expect(r3.inboundPorts).to.deep.equal([9080]);
    expect(r3.env).to.deep.include({ name: 'RATINGS_URL', value: 'http://ratings:9080' });
    expect(r3.env).to.deep.include({ name: 'POD_NAME', fieldPath: 'metadata.name' });
    expect(m.objects.filter((o) => (o as { kind: string }).kind === 'Service')).to.have.length(4);
  });

  it('routes by the mesh directory over the synthetic pods (subset endpoints = pod IPs)', () => {
    const pods = place(m.workloads);
    const base = baseSnapshot(m.objects, pods);
    const snap = overlaySnapshot(base, new StaticSource(VS_V3).current());
    expect(snap.virtualServices.map((v) => v.name)).to.deep.equal(['reviews']);
    const r = compileForWorkload(snap, byName('productpage-v1').identity);
    const v3 = r.endpoints.clusters['outbound|9080|v3|reviews.default.svc.cluster.local'];
    const ip = pods.find((p) => p.workload.identity.name === 'reviews-v3')!.ip;
    expect(v3?.map((e) => `${e.address}:${e.port}`)).to.deep.equal([`${ip}:9080`]);
    expect(overlaySnapshot(base, new StaticSource(VS_V3).current()).version).to.equal(snap.version);
    expect(overlaySnapshot(base, new StaticSource([]).current()).version).to.not.equal(snap.version);
  });

  it('binds the inbound listener on the service port and sends it to the app port, without mutating', () => {
    const snap = baseSnapshot(m.objects, place(m.workloads));
    const r = compileForWorkload(snap, byName('details-v1').identity);
    const before = JSON.stringify(r);
    const t = localTables(r, [9080], 41234);
    const inbound = t.listeners.find((l) => l.direction === 'inbound')!;
    expect(inbound).to.include({ name: 'virtualInbound', port: 9080 });
    expect(t.endpoints!['inbound|9080||']).to.deep.equal([{ address: '127.0.0.1', port: 41234 }]);
    expect(t.listeners.find((l) => l.name === 'virtualOutbound')).to.include({ explicitProxy: true });
    expect(JSON.stringify(r)).to.equal(before);
  });

  it('reserves loopback addresses so a second allocator skips them', async () => {
    const a = new LoopbackAllocator(200_000, 20);
    const b = new LoopbackAllocator(200_000, 20);
    const ipA = await a.allocate([18080]);
    const ipB = await b.allocate([18080]);
    try {
      expect(ipA).to.match(/^127\.3\.13\.\d+$/);
      expect(ipB).to.not.equal(ipA);
      expect(await canBind(ipA, 18080)).to.equal(false);
      await a.release(ipA);
      expect(await canBind(ipA, 18080)).to.equal(true);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('notices a file replaced by rename (editors, sed -i) in the directory fingerprint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isthmus-fp-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'kind: A\n');
      const first = fingerprint(dir);
      writeFileSync(join(dir, '.a.yaml.tmp'), 'kind: A\n');
      renameSync(join(dir, '.a.yaml.tmp'), join(dir, 'a.yaml'));
      expect(fingerprint(dir)).to.not.equal(first);
      expect(fingerprint(join(dir, 'missing'))).to.equal('missing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
