/**
 * Golden tests: every testdata/*.yaml is run through kube-inject and compared with *.yaml.injected.
 * UPDATE_GOLDEN=1 rewrites the goldens (review the diff before committing).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { kubeInject } from '../../src/inject/kube-inject.js';
import { testContext } from './helpers.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const update = process.env.UPDATE_GOLDEN === '1';
const inputs = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('kube-inject goldens', () => {
  it('has at least 15 input manifests', () => {
    expect(inputs.length).to.be.at.least(15);
  });

  for (const file of inputs) {
    it(file, () => {
      const ctx = testContext();
      const input = readFileSync(join(dir, file), 'utf8');
      const { output } = kubeInject(input, ctx, file);
      // An injected manifest comes back unchanged (Istio's kube-inject cannot do this).
      if (file.startsWith('already-injected')) expect(output).to.equal(input);
      const goldenPath = join(dir, `${file}.injected`);
      if (update) writeFileSync(goldenPath, output);
      expect(output).to.equal(readFileSync(goldenPath, 'utf8'));
      // Injecting the output again changes nothing, byte for byte.
      expect(kubeInject(output, ctx, `${file}.injected`).output).to.equal(output);
    });
  }
});
