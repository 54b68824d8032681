import { expect } from 'chai';
import { renderInstall } from '../../src/cli/commands/install.js';

describe('isthmus install', () => {
  it('renders the CRDs, the controller and both webhook configurations', () => {
    const kinds = renderInstall({ namespace: 'istio-system' }).map(
      (d) => `${d.kind}/${(d.metadata as { name: string }).name}`,
    );
    expect(kinds).to.include.members([
      'CustomResourceDefinition/virtualservices.networking.istio.io',
      'CustomResourceDefinition/authorizationpolicies.security.istio.io',
      'Namespace/istio-system',
      'Deployment/isthmus-controller',
      'Service/isthmus-controller',
      'ValidatingWebhookConfiguration/isthmus-validator',
      'MutatingWebhookConfiguration/isthmus-sidecar-injector',
    ]);
  });

  it('moves every namespaced part and webhook Service reference to another namespace', () => {
    const docs = renderInstall({ namespace: 'mesh-system' });
    const text = JSON.stringify(docs);
    expect(text).to.not.contain('"istio-system"');
    expect(docs.find((d) => d.kind === 'Namespace')?.metadata?.name).to.equal('mesh-system');
    const vwc = docs.find((d) => d.kind === 'ValidatingWebhookConfiguration') as {
      webhooks: Array<{ clientConfig: { service: { namespace: string } } }>;
    };
    expect(vwc.webhooks[0]!.clientConfig.service.namespace).to.equal('mesh-system');
  });

  it('points the controller at the image and tells it to inject the same image', () => {
    const deploy = renderInstall({ namespace: 'istio-system', image: 'docker.io/isthmus/isthmus:dev' }).find(
      (d) => d.kind === 'Deployment',
    ) as {
      spec: { template: { spec: { containers: Array<{ image: string; args: string[] }> } } };
    };
    const c = deploy.spec.template.spec.containers[0]!;
    expect(c.image).to.equal('docker.io/isthmus/isthmus:dev');
    expect(c.args).to.deep.equal([
      'controller',
      '--reconcile',
      '--proxy-image',
      'docker.io/isthmus/isthmus:dev',
    ]);
  });
});
