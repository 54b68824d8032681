/**
 * Golden tests of the compiler. UPDATE_GOLDEN=1 rewrites the expected files (review the diff).
 * Every output must also pass the proxy's own validators and compile byte-identically twice.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { compileForWorkload } from '../../src/compiler/index.js';
import { buildSnapshot } from '../../src/registry/snapshot.js';
import { formatErrors, validateEndpoints, validateTables } from '../../src/tables/index.js';
import { caseNames, loadCase, pretty } from './golden.js';

const update = process.env.UPDATE_GOLDEN === '1';

function check(path: string, actual: string): void {
  if (update) writeFileSync(path, actual);
  expect(existsSync(path), `${path} missing (run with UPDATE_GOLDEN=1)`).to.equal(true);
  expect(actual).to.equal(readFileSync(path, 'utf8'));
}

describe('compiler goldens', () => {
  it('has the required cases', () => {
    expect(caseNames().length).to.be.at.least(12);
  });

  for (const name of caseNames()) {
    it(name, () => {
      const c = loadCase(name);
      expect(c.workloads.length, 'workloads').to.be.greaterThan(0);
      if (update) for (const f of readdirSync(c.dir)) if (f !== 'input.yaml') rmSync(join(c.dir, f));
      for (const w of c.workloads) {
        const r = compileForWorkload(c.snapshot, w);
        const t = validateTables(r.tables);
        expect(t.ok, t.ok ? '' : formatErrors(t.errors)).to.equal(true);
        const e = validateEndpoints(r.endpoints);
        expect(e.ok, e.ok ? '' : formatErrors(e.errors)).to.equal(true);
        const base = join(c.dir, `${w.namespace}.${w.name}`);
        check(`${base}.tables.json`, pretty(r.tables));
        check(`${base}.endpoints.json`, pretty(r.endpoints));
        const warnings = r.warnings.map((x) => `${x.resource}: ${x.message}\n`).join('');
        if (warnings || existsSync(`${base}.warnings.txt`)) check(`${base}.warnings.txt`, warnings);
        // Deterministic: a fresh snapshot of the same objects (in reverse order) gives the same bytes.
        const again = compileForWorkload(buildSnapshot([...c.objects].reverse()), w);
        expect(pretty(again.tables)).to.equal(pretty(r.tables));
        expect(pretty(again.endpoints)).to.equal(pretty(r.endpoints));
      }
    });
  }
});
