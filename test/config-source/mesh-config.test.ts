/**
 * parseMeshConfig: the `mesh` key of ConfigMap `istio` (Istio MeshConfig YAML) -> the mesh
 * settings Isthmus implements. Defaults for blank input, unknown fields ignored as Istio does,
 * malformed fields reported by name (never thrown).
 */
import { expect } from 'chai';
import { parseMeshConfig } from '../../src/config-source/mesh-config.js';

describe('mesh config (ConfigMap istio, key mesh)', () => {
  it("gives Istio's defaults for an absent, blank or empty document", () => {
    for (const text of [undefined, '', '  \n', '{}', '# only a comment\n']) {
      const r = parseMeshConfig(text);
      expect(r, String(text)).to.deep.equal({ ok: true, settings: { outboundTrafficPolicy: 'ALLOW_ANY' } });
    }
  });

  it('reads outboundTrafficPolicy.mode and the access log fields', () => {
    const r = parseMeshConfig(
      [
        'accessLogFile: /dev/stdout',
        'accessLogEncoding: JSON',
        'accessLogFormat: \'{"code":"%RESPONSE_CODE%","path":"%REQ(:PATH)%"}\'',
        'outboundTrafficPolicy:',
        '  mode: REGISTRY_ONLY',
      ].join('\n'),
    );
    expect(r).to.deep.equal({
      ok: true,
      settings: {
        outboundTrafficPolicy: 'REGISTRY_ONLY',
        accessLog: {
          file: '/dev/stdout',
          encoding: 'JSON',
          format: '{"code":"%RESPONSE_CODE%","path":"%REQ(:PATH)%"}',
        },
      },
    });
  });

  it('defaults the encoding to TEXT and treats an empty accessLogFile as off', () => {
    expect(parseMeshConfig('accessLogFile: /var/log/access.log\n')).to.deep.equal({
      ok: true,
      settings: {
        outboundTrafficPolicy: 'ALLOW_ANY',
        accessLog: { file: '/var/log/access.log', encoding: 'TEXT' },
      },
    });
    expect(parseMeshConfig('accessLogFile: ""\naccessLogEncoding: JSON\n')).to.deep.equal({
      ok: true,
      settings: { outboundTrafficPolicy: 'ALLOW_ANY' },
    });
  });

  it('ignores fields it does not implement (rootNamespace included), as Istio ignores unknown ones', () => {
    const r = parseMeshConfig(
      [
        'rootNamespace: elsewhere',
        'enableTracing: true',
        'defaultConfig: {discoveryAddress: "istiod.istio-system.svc:15012", tracing: {sampling: 10}}',
        'someFutureField: {x: 1}',
        'outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: egress}}',
      ].join('\n'),
    );
    expect(r).to.deep.equal({ ok: true, settings: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
  });

  it('reports each malformed field by name', () => {
    const r = parseMeshConfig(
      [
        'accessLogFile: 42',
        'accessLogEncoding: XML',
        'accessLogFormat: [a]',
        'outboundTrafficPolicy: {mode: DENY_ALL}',
      ].join('\n'),
    );
    expect(r).to.deep.equal({
      ok: false,
      errors: [
        'outboundTrafficPolicy.mode: expected ALLOW_ANY or REGISTRY_ONLY, got "DENY_ALL"',
        'accessLogFile: expected a path such as /dev/stdout, got 42',
        'accessLogEncoding: expected TEXT or JSON, got "XML"',
        'accessLogFormat: expected a string, got ["a"]',
      ],
    });
    expect(parseMeshConfig('outboundTrafficPolicy: REGISTRY_ONLY\n')).to.deep.equal({
      ok: false,
      errors: ['outboundTrafficPolicy: expected a mapping with mode'],
    });
  });

  it('rejects a format the proxy cannot compile, naming accessLogFormat and the command', () => {
    const r = parseMeshConfig(
      'accessLogFile: /dev/stdout\naccessLogFormat: "%NOT_A_COMMAND% %RESPONSE_CODE%"\n',
    );
    expect(r).to.deep.equal({
      ok: false,
      errors: ['accessLogFormat: access log format: unsupported command %NOT_A_COMMAND%'],
    });
    const j = parseMeshConfig(
      'accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: "not json"\n',
    );
    expect(j.ok).to.equal(false);
    expect(!j.ok && j.errors[0]).to.match(/^accessLogFormat: .*JSON object of field -> format string/);
  });

  it('rejects text that is not YAML or not a mapping', () => {
    const bad = parseMeshConfig('accessLogFile: [unclosed\n');
    expect(bad.ok).to.equal(false);
    expect(!bad.ok && bad.errors[0]).to.match(/^not YAML \(/);
    expect(parseMeshConfig('- a\n- b\n')).to.deep.equal({
      ok: false,
      errors: ['expected a mapping of MeshConfig fields'],
    });
  });
});
