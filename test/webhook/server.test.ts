import { expect } from 'chai';
import { Agent, request } from 'undici';
import { createSelfSignedCa, issueLeaf } from '../../src/ca/x509.js';
import { type AdmissionServer, startAdmissionServer } from '../../src/webhook/server.js';
import { validateAdmission } from '../../src/webhook/validate-handler.js';

const reviewOf = (
  object: unknown,
  opts: { apiVersion?: string; operation?: string; namespace?: string } = {},
) => ({
  apiVersion: opts.apiVersion ?? 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'c0ffee00-1234-5678-9abc-def012345678',
    kind: {
      group: 'networking.istio.io',
      version: 'v1',
      kind: (object as { kind?: string })?.kind ?? 'VirtualService',
    },
    operation: opts.operation ?? 'CREATE',
    namespace: opts.namespace ?? 'shop',
    object,
  },
});

const vs = (weight: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    hosts: ['reviews'],
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 100 },
          { destination: { host: 'reviews', subset: 'v2' }, weight },
        ],
      },
    ],
  },
});

describe('admission server (real HTTPS on loopback)', () => {
  let server: AdmissionServer;
  let dispatcher: Agent;
  let base: string;

  before(() => {
    const ca = createSelfSignedCa({ commonName: 'test-ca', validityDays: 1 });
    const leaf = issueLeaf(ca, { names: ['localhost', '127.0.0.1'], validityHours: 1 });
    dispatcher = new Agent({ connect: { ca: ca.certPem } });
    return startAdmissionServer({
      port: 0,
      host: '127.0.0.1',
      cert: leaf.certPem,
      key: leaf.keyPem!,
      handlers: { '/validate': (r) => validateAdmission(r) },
      maxBodyBytes: 64 * 1024,
    }).then((s) => {
      server = s;
      base = `https://127.0.0.1:${s.port}`;
    });
  });
  after(async () => {
    await server.close();
    await dispatcher.close();
  });

  async function post(path: string, body: string | object) {
    const res = await request(`${base}${path}`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, text, json: () => JSON.parse(text) };
  }

  it('allows a valid VirtualService and echoes uid and apiVersion', async () => {
    const res = await post('/validate', reviewOf(vs(0)));
    expect(res.status).to.equal(200);
    const body = res.json();
    expect(body.apiVersion).to.equal('admission.k8s.io/v1');
    expect(body.kind).to.equal('AdmissionReview');
    expect(body.response).to.include({ uid: 'c0ffee00-1234-5678-9abc-def012345678', allowed: true });
  });

  it('denies an invalid VirtualService with the resource, field path and reason', async () => {
    const res = await post('/validate', reviewOf(vs(-10)));
    const body = res.json();
    expect(body.response.allowed).to.equal(false);
    expect(body.response.status.message).to.contain(
      'VirtualService shop/reviews: spec.http[0].route[1].weight: must be >= 0',
    );
  });

  it('speaks admission.k8s.io/v1beta1 too', async () => {
    const res = await post('/validate', reviewOf(vs(-1), { apiVersion: 'admission.k8s.io/v1beta1' }));
    const body = res.json();
    expect(body.apiVersion).to.equal('admission.k8s.io/v1beta1');
    expect(body.response.allowed).to.equal(false);
  });

  it('returns warnings alongside an allowed response', async () => {
    const obj = vs(0);
    obj.spec.http.push({
      route: [
        { destination: { host: 'ratings', subset: 'v1' }, weight: 100 },
        { destination: { host: 'ratings', subset: 'v2' }, weight: 0 },
      ],
    });
    const body = (await post('/validate', reviewOf(obj))).json();
    expect(body.response.allowed).to.equal(true);
    expect(body.response.warnings.join('\n')).to.contain('spec.http[1]: this route is unreachable');
  });

  it('allows DELETE and kinds it does not own', async () => {
    expect(
      (await post('/validate', reviewOf(vs(-1), { operation: 'DELETE' }))).json().response.allowed,
    ).to.equal(true);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: {} };
    expect((await post('/validate', reviewOf(cm))).json().response.allowed).to.equal(true);
  });

  it('answers malformed JSON with a 400 that says so', async () => {
    const res = await post('/validate', '{"apiVersion": "admission.k8s.io/v1", "kind": ');
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('not valid JSON');
  });

  it('answers a review of the wrong kind or version with a 400 naming the field', async () => {
    const wrongKind = await post('/validate', { ...reviewOf(vs(0)), kind: 'TokenReview' });
    expect(wrongKind.status).to.equal(400);
    expect(wrongKind.text).to.contain('kind must be AdmissionReview');
    const wrongVersion = await post('/validate', { ...reviewOf(vs(0)), apiVersion: 'admission.k8s.io/v2' });
    expect(wrongVersion.status).to.equal(400);
    expect(wrongVersion.text).to.contain('apiVersion must be one of');
    const noRequest = await post('/validate', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(noRequest.status).to.equal(400);
    expect(noRequest.text).to.contain('request is missing');
  });

  it('answers an oversized body with a 400 and keeps serving', async () => {
    const huge = JSON.stringify(
      reviewOf({ ...vs(0), metadata: { name: 'x', annotations: { big: 'x'.repeat(100 * 1024) } } }),
    );
    const res = await post('/validate', huge);
    expect(res.status).to.equal(400);
    expect(res.text).to.contain('larger than the 65536-byte limit');
    expect((await post('/validate', reviewOf(vs(0)))).status).to.equal(200);
  });

  it('serves 200 concurrent reviews without error', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => post('/validate', reviewOf(vs(i % 2 ? -1 : 1)))),
    );
    expect(results.every((r) => r.status === 200)).to.equal(true);
    expect(results.filter((r) => r.json().response.allowed).length).to.equal(100);
  });
});
