/**
 * The status a mesh resource should carry (pure): Istio's IstioStatus shape from analyze
 * findings and compile warnings, with analysis message codes.
 */
import { expect } from 'chai';
import { warningCode } from '../../src/compiler/warnings.js';
import { desiredStatus } from '../../src/controller/status.js';

const VS = 'VirtualService shop/reviews';

describe('mesh resource status (desiredStatus)', () => {
  it('is Reconciled True "Accepted" with the generation and no messages when nothing is wrong', () => {
    expect(desiredStatus(3, [], [])).to.deep.equal({
      conditions: [
        {
          type: 'Reconciled',
          status: 'True',
          reason: 'Accepted',
          message: 'accepted',
          observedGeneration: 3,
        },
      ],
      observedGeneration: 3,
      validationMessages: [],
    });
  });

  it('reports a subset found missing by analyze and by the compiler once, as IST0101 at level ERROR', () => {
    const s = desiredStatus(
      1,
      [
        {
          path: 'spec.http[0].route[0].destination.subset',
          severity: 'warning',
          message:
            'subset "v9" of host "reviews.shop.svc.cluster.local" is not defined by any DestinationRule',
          code: 'ReferencedResourceNotFound',
        },
      ],
      [
        {
          resource: VS,
          message:
            'subset "v9" of reviews.shop.svc.cluster.local is not defined by any DestinationRule; requests to it fail with 503',
          code: 'ReferencedResourceNotFound',
        },
      ],
    );
    expect(s.validationMessages).to.deep.equal([
      {
        level: 'ERROR',
        type: { code: 'IST0101', name: 'ReferencedResourceNotFound' },
        description:
          'spec.http[0].route[0].destination.subset: subset "v9" of host "reviews.shop.svc.cluster.local" is not defined by any DestinationRule',
      },
    ]);
    expect(s.conditions[0]).to.include({ status: 'False', reason: 'ReferencedResourceNotFound' });
    expect(s.conditions[0]!.message).to.match(/^IST0101: spec\.http\[0\]/);
  });

  it('keeps a resource with only warnings Reconciled True, counting them', () => {
    const s = desiredStatus(
      2,
      [],
      [
        {
          resource: VS,
          message: 'spec.http[0].delegate: delegate VirtualServices are not supported yet; rule skipped',
        },
      ],
    );
    expect(s.conditions[0]).to.include({
      status: 'True',
      reason: 'Accepted',
      message: 'accepted with 1 warning',
    });
    expect(s.validationMessages.map((m) => [m.level, m.type.code, m.type.name])).to.deep.equal([
      ['WARNING', 'IST0133', 'SchemaWarning'],
    ]);
  });

  it('turns schema errors into IST0106 SchemaValidationError and lists errors before warnings', () => {
    const s = desiredStatus(
      5,
      [
        {
          path: 'spec.http[0].route[0].weight',
          severity: 'error',
          message: 'weight must be between 0 and 100',
        },
        { path: 'spec.hosts', severity: 'warning', message: 'host "*" matches every service' },
      ],
      [],
    );
    expect(s.validationMessages.map((m) => m.type.code)).to.deep.equal(['IST0106', 'IST0133']);
    expect(s.conditions[0]).to.include({ status: 'False', reason: 'SchemaValidationError' });
  });

  it('classifies compiler warnings by wording when the caller gave no code', () => {
    const code = (message: string) => warningCode({ resource: 'DestinationRule shop/reviews', message });
    expect(code('subset "v3" of reviews.shop.svc.cluster.local matches no ready endpoint')).to.equal(
      'DestinationRuleSubsetNotSelectPods',
    );
    expect(code('targetRef Service shop/nope does not exist; skipped')).to.equal(
      'ReferencedResourceNotFound',
    );
    expect(code('loadBalancer.localityLbSetting is not supported yet')).to.equal('SchemaWarning');
  });
});
