/**
 * Istio documentation/sample configs: every valid document passes with no error; every invalid
 * one fails for the reason its file states. An invalid fixture starts with one or more lines
 *   # expect: <path>: <message substring>
 * and each must match one of the errors reported for the file's documents.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { formatFinding, validateResource } from '../../src/validation/resource.js';

const root = join(import.meta.dirname, 'fixtures');

function files(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(root, dir, f));
}

function errorsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${file}: YAML error ${doc.errors[0]!.message}`);
    const obj = doc.toJS();
    if (obj == null) continue;
    const verdict = validateResource(obj);
    expect(verdict.meshKind, `${file}: ${verdict.ref.kind} is not a mesh kind`).to.equal(true);
    for (const finding of verdict.findings) {
      if (finding.severity === 'error') out.push(`${finding.path}: ${finding.message}`);
    }
  }
  return out;
}

describe('Istio configs from the docs and samples', () => {
  describe('valid', () => {
    const valid = files('valid');
    it('has at least 15 valid documents', () => expect(valid.length).to.be.at.least(15));
    for (const file of valid) {
      it(`accepts ${file.slice(root.length + 1)}`, () => {
        expect(errorsOf(file)).to.deep.equal([]);
      });
    }
  });

  describe('invalid', () => {
    const invalid = files('invalid');
    it('has at least 40 invalid documents', () => expect(invalid.length).to.be.at.least(40));
    for (const file of invalid) {
      const expects = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('# expect: '))
        .map((l) => l.slice('# expect: '.length).trim());
      it(`rejects ${file.slice(root.length + 1)} (${expects.join('; ')})`, () => {
        expect(expects, 'fixture must state its expected error').to.not.be.empty;
        const errors = errorsOf(file);
        for (const want of expects) {
          expect(
            errors.some((e) => e.includes(want)),
            `expected an error containing "${want}", got:\n  ${errors.join('\n  ')}`,
          ).to.equal(true);
        }
      });
    }
  });

  it('formats a finding with kind, namespace/name, path and reason', () => {
    const line = formatFinding(
      { kind: 'VirtualService', namespace: 'shop', name: 'reviews' },
      {
        path: 'spec.http[0].route[1].weight',
        severity: 'error',
        message: 'must be >= 0',
      },
    );
    expect(line).to.equal('VirtualService shop/reviews: spec.http[0].route[1].weight: must be >= 0');
  });
});
