// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are sidecar-template source, not JS templates.
import { expect } from 'chai';
import { injectPod } from '../../src/inject/inject.js';
import {
  loadSidecarTemplate,
  parseSidecarTemplate,
  renderTemplate,
  TemplateError,
} from '../../src/inject/template.js';
import { simplePod, testContext } from './helpers.js';

const tpl = (text: string) => parseSidecarTemplate(text, 'test.yaml');

describe('sidecar template rendering', () => {
  it('substitutes typed values, interpolates strings and applies filters', () => {
    const out = renderTemplate(
      tpl(
        'containers:\n- port: ${p.n}\n  arg: "${p.n|string}"\n  url: "http://x:${p.n}/y"\n  cfg: ${c|json}\n',
      ),
      { p: { n: 15020 }, c: { a: 1 } },
    );
    expect(out.containers).to.deep.equal([
      { port: 15020, arg: '15020', url: 'http://x:15020/y', cfg: '{"a":1}' },
    ]);
  });

  it('drops null entries and splices lists', () => {
    const out = renderTemplate(tpl('containers:\n- args: [a, "${more}", "${none}", b]\n  hook: ${none}\n'), {
      more: ['-o', '1'],
      none: null,
    });
    expect(out.containers).to.deep.equal([{ args: ['a', '-o', '1', 'b'] }]);
  });

  it('keeps pod values as data, never as YAML', () => {
    const out = renderTemplate(tpl('containers:\n- name: ${v}\n'), { v: 'x\n  evil: true' });
    expect(out.containers).to.deep.equal([{ name: 'x\n  evil: true' }]);
  });

  it('rejects unknown names, prototype access and unknown filters', () => {
    expect(() => renderTemplate(tpl('containers:\n- a: ${nope}\n'), {})).to.throw(TemplateError, /nope/);
    expect(() => renderTemplate(tpl('containers:\n- a: ${constructor}\n'), {})).to.throw(TemplateError);
    expect(() => renderTemplate(tpl('containers:\n- a: ${x|eval}\n'), { x: 1 })).to.throw(
      TemplateError,
      /eval/,
    );
    expect(() => renderTemplate(tpl('containers:\n- a: "p ${o}"\n'), { o: { a: 1 } })).to.throw(
      TemplateError,
      /scalar/,
    );
  });

  it('keeps $${ as a literal', () => {
    expect(renderTemplate(tpl('containers:\n- a: "$${x}"\n'), {}).containers).to.deep.equal([{ a: '${x}' }]);
  });

  it('rejects a template that is not a mapping of lists', () => {
    expect(() => tpl('- a')).to.throw(TemplateError);
    expect(() => tpl('containers: {}')).to.throw(TemplateError, /containers/);
  });

  it('bundled template renders', () => {
    expect(loadSidecarTemplate().root.containers).to.be.an('array');
  });

  it('an edited template with a typo refuses the pod with the reason', () => {
    const ctx = testContext({ template: tpl('containers:\n- name: istio-proxy\n  image: ${proxyImag}\n') });
    const r = injectPod(simplePod(), ctx);
    expect(r.kind).to.equal('error');
    expect(r.kind === 'error' && r.message).to.contain('proxyImag');
  });

  it('a template without the proxy container is refused', () => {
    const r = injectPod(simplePod(), testContext({ template: tpl('containers: []\n') }));
    expect(r.kind === 'error' && r.message).to.contain('istio-proxy');
  });
});
