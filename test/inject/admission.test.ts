import { expect } from 'chai';
import jsonpatch from 'fast-json-patch';
import { admissionResponse, injectAdmission } from '../../src/inject/admission.js';
import { ANNOTATIONS } from '../../src/inject/constants.js';
import { injectPod } from '../../src/inject/inject.js';
import type { Pod } from '../../src/inject/types.js';
import { simplePod, testContext } from './helpers.js';

describe('injectAdmission', () => {
  const ctx = testContext();

  for (const [name, pod] of [
    ['a plain pod', simplePod()],
    [
      'a pod without annotations or labels',
      { metadata: { name: 'bare' }, spec: { containers: [{ name: 'a', image: 'a' }] } },
    ],
    [
      'a pod with hold and native sidecars',
      simplePod({
        annotations: {
          [ANNOTATIONS.proxyConfig]: 'holdApplicationUntilProxyStarts: true',
          [ANNOTATIONS.nativeSidecar]: 'true',
        },
      }),
    ],
  ] as Array<[string, Pod]>) {
    it(`patch turns ${name} into the injected pod`, () => {
      const r = injectAdmission(pod, { 'istio-injection': 'enabled' }, ctx, { namespace: 'shop' });
      expect(r.allowed).to.equal(true);
      expect(r.patch).to.be.an('array').that.is.not.empty;
      const expected = injectPod(pod, ctx, { namespace: 'shop' });
      if (expected.kind !== 'injected') throw new Error('expected injection');
      const patched = jsonpatch.applyPatch(structuredClone(pod), r.patch!, true, false).newDocument;
      expect(patched).to.deep.equal(expected.pod);
    });
  }

  it('answers an already injected pod with no patch', () => {
    const once = injectPod(simplePod(), ctx);
    if (once.kind !== 'injected') throw new Error('expected injection');
    const r = injectAdmission(once.pod, undefined, ctx);
    expect(r).to.include({ allowed: true, skipReason: 'already-injected' });
    expect(r.patch).to.equal(undefined);
  });

  it('allows opted-out pods unchanged', () => {
    const r = injectAdmission(simplePod({ labels: { 'sidecar.istio.io/inject': 'false' } }), undefined, ctx);
    expect(r).to.deep.include({ allowed: true, skipReason: 'opted-out' });
    expect(r.patch).to.equal(undefined);
  });

  it('honours namespace labels when given', () => {
    expect(injectAdmission(simplePod(), { 'istio-injection': 'disabled' }, ctx).skipReason).to.equal(
      'namespace-not-enabled',
    );
    expect(injectAdmission(simplePod(), {}, ctx).skipReason).to.equal('namespace-not-enabled');
    const asked = simplePod({ labels: { 'sidecar.istio.io/inject': 'true' } });
    expect(injectAdmission(asked, {}, ctx).patch).to.be.an('array');
  });

  it('refuses a pod it cannot render, saying why', () => {
    const r = injectAdmission(
      simplePod({ annotations: { [ANNOTATIONS.excludeOutboundPorts]: 'x' } }),
      undefined,
      ctx,
    );
    expect(r.allowed).to.equal(false);
    expect(r.message).to.contain(ANNOTATIONS.excludeOutboundPorts).and.contain('"x"');
  });

  it('builds an AdmissionReview response with a base64 JSONPatch', () => {
    const r = injectAdmission(simplePod(), undefined, ctx);
    const resp = admissionResponse('uid-1', r);
    expect(resp).to.include({ uid: 'uid-1', allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(resp.patch as string, 'base64').toString('utf8'));
    expect(ops).to.deep.equal(r.patch);
    const denied = admissionResponse('uid-2', { allowed: false, message: 'nope' });
    expect(denied).to.deep.equal({ uid: 'uid-2', allowed: false, status: { code: 400, message: 'nope' } });
  });
});
