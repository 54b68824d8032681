/**
 * Validation throughput: `isthmus analyze` over a directory of 1,000 generated documents
 * (a mix of every kind), run as the real CLI process; and in-process documents per second.
 * Target (issue #2): a 1,000-document directory in under 2 s.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../src/util/paths.js';
import { analyze } from '../src/validation/analyze.js';
import { fmt } from './lib.js';

const fixtures = join(PROJECT_ROOT, 'test/validation/fixtures/valid');
const templates = readdirSync(fixtures, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(fixtures, f), 'utf8'));

const dir = mkdtempSync(join(tmpdir(), 'isthmus-bench-validate-'));
try {
  for (let i = 0; i < 1000; i++) {
    const text = templates[i % templates.length]!.replace(/^(\s*)name: ([A-Za-z0-9.-]+)/m, `$1name: $2-${i}`);
    writeFileSync(join(dir, `doc-${String(i).padStart(4, '0')}.yaml`), text);
  }
  const cli = join(PROJECT_ROOT, 'bin', 'isthmus.js');
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    const res = spawnSync(process.execPath, [cli, 'analyze', '-f', dir], { encoding: 'utf8' });
    runs.push(performance.now() - t0);
    if (res.status !== 0 && r === 0)
      console.log(`note: analyze exited ${res.status}:\n${res.stdout.split('\n').slice(-3).join('\n')}`);
  }
  console.log(
    `analyze -f <1,000 documents>: ${runs.map((ms) => `${fmt(ms / 1000)} s`).join(', ')} (whole CLI process incl. startup; target < 2 s)`,
  );

  const docs = readdirSync(dir).flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => ({ source: f, object: d.toJS() })),
  );
  analyze(docs); // warm up
  const t0 = performance.now();
  const rounds = 5;
  for (let r = 0; r < rounds; r++) analyze(docs);
  const perDoc = (performance.now() - t0) / (rounds * docs.length);
  console.log(
    `in-process analyze: ${fmt(perDoc * 1000, 1)} µs/document (${fmt(1000 / perDoc, 0)} documents/s)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
