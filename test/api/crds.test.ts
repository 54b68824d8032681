import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { renderCrdFiles } from '../../src/api/crd-files.js';
import { KINDS } from '../../src/api/kinds.js';
import { CRDS_DIR } from '../../src/util/paths.js';

/** Kubernetes' structural-schema rules that matter for our generator. */
function structuralProblems(node: Record<string, unknown>, path: string, out: string[]): void {
  for (const banned of ['$ref', 'oneOf', 'anyOf', 'patternProperties', '$schema', '$id']) {
    if (banned in node) out.push(`${path}: ${banned} is not allowed`);
  }
  if (node.additionalProperties === false) out.push(`${path}: additionalProperties: false is not allowed`);
  if (
    !('type' in node) &&
    !node['x-kubernetes-int-or-string'] &&
    !node['x-kubernetes-preserve-unknown-fields']
  )
    out.push(`${path}: missing type`);
  if (node.properties && node.additionalProperties)
    out.push(`${path}: properties and additionalProperties together`);
  for (const [k, v] of Object.entries((node.properties as Record<string, Record<string, unknown>>) ?? {}))
    structuralProblems(v, `${path}.${k}`, out);
  if (node.items) structuralProblems(node.items as Record<string, unknown>, `${path}[]`, out);
  if (typeof node.additionalProperties === 'object')
    structuralProblems(node.additionalProperties as Record<string, unknown>, `${path}{}`, out);
}

describe('CRDs in crds/', () => {
  it('are exactly what the schemas generate (run `npm run gen:crds` when this fails)', () => {
    const expected = renderCrdFiles();
    const present = readdirSync(CRDS_DIR)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(present).to.deep.equal([...expected.keys()].sort());
    for (const [file, text] of expected)
      expect(readFileSync(join(CRDS_DIR, file), 'utf8'), `crds/${file} is stale`).to.equal(text);
  });

  it('serve every Istio version with one storage version', () => {
    for (const kind of KINDS) {
      const crd = parse(renderCrdFiles().get(`${kind.group}_${kind.plural}.yaml`)!);
      expect(crd.metadata.name).to.equal(`${kind.plural}.${kind.group}`);
      const versions = crd.spec.versions as Array<{ name: string; served: boolean; storage: boolean }>;
      expect(versions.map((v) => v.name)).to.have.members(
        kind.group === 'networking.istio.io' ? ['v1alpha3', 'v1beta1', 'v1'] : ['v1beta1', 'v1'],
      );
      expect(versions.every((v) => v.served)).to.equal(true);
      expect(versions.filter((v) => v.storage).length).to.equal(1);
    }
  });

  it('have structural schemas that keep unknown fields for the webhook to name', () => {
    for (const kind of KINDS) {
      const crd = parse(renderCrdFiles().get(`${kind.group}_${kind.plural}.yaml`)!);
      const problems: string[] = [];
      const schema = crd.spec.versions[0].schema.openAPIV3Schema;
      structuralProblems(schema, kind.kind, problems);
      expect(problems, problems.join('\n')).to.deep.equal([]);
      expect(schema.properties.spec['x-kubernetes-preserve-unknown-fields']).to.equal(true);
    }
  });
});
