import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Command } from 'commander';
import { register } from '../../src/cli/commands/kube-inject.js';
import { KubeInjectError, kubeInject } from '../../src/inject/kube-inject.js';
import { testContext } from './helpers.js';

const testdata = join(dirname(fileURLToPath(import.meta.url)), 'testdata');

describe('kubeInject', () => {
  const ctx = testContext();

  it('names the file and document of bad YAML', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\n---\nkind: Pod\nspec: [\n';
    expect(() => kubeInject(text, ctx, 'bad.yaml')).to.throw(
      KubeInjectError,
      /^bad\.yaml: document 2: invalid YAML/,
    );
  });

  it('names the object with a bad annotation', () => {
    const text = readFileSync(join(testdata, 'pod.yaml'), 'utf8')
      .replace('spec:', 'spec:\n')
      .replace('  labels:', '  annotations:\n    sidecar.istio.io/logLevel: loud\n  labels:');
    expect(() => kubeInject(text, ctx, 'p.yaml')).to.throw(
      KubeInjectError,
      /p\.yaml: document 1: Pod sleep: .*logLevel.*loud/,
    );
  });

  it('passes other kinds and non-object documents through untouched', () => {
    const text = '# head\napiVersion: v1\nkind: Secret\nmetadata: {name: s}  # keep\n---\n42\n';
    expect(kubeInject(text, ctx, 'x').output).to.equal(text);
  });

  it('reports skips as warnings', () => {
    const { warnings } = kubeInject(readFileSync(join(testdata, 'host-network.yaml'), 'utf8'), ctx, 'h.yaml');
    expect(warnings.join()).to.contain('host-network');
  });
});

describe('isthmus kube-inject', () => {
  async function run(args: string[]): Promise<void> {
    const program = new Command('isthmus').exitOverride();
    register(program);
    await program.parseAsync(['node', 'isthmus', 'kube-inject', ...args]);
  }

  it('writes the injected manifests of a file to -o', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'kube-inject-')), 'out.yaml');
    await run([
      '-f',
      join(testdata, 'pod.yaml'),
      '-o',
      out,
      '--image',
      'docker.io/isthmus/isthmus:test',
      '--cluster-version',
      '1.28',
    ]);
    expect(readFileSync(out, 'utf8')).to.equal(readFileSync(join(testdata, 'pod.yaml.injected'), 'utf8'));
  });

  it('injects every manifest of a directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-inject-'));
    writeFileSync(join(dir, 'a.yaml'), readFileSync(join(testdata, 'pod.yaml')));
    writeFileSync(join(dir, 'b.yml'), readFileSync(join(testdata, 'job.yaml')));
    writeFileSync(join(dir, 'notes.txt'), 'not yaml: [');
    const out = join(dir, 'out.yaml');
    await run(['-f', dir, '-o', out, '--native-sidecars']);
    const text = readFileSync(out, 'utf8');
    expect(text.match(/sidecar\.istio\.io\/status/g)).to.have.length(2);
    expect(text).to.contain('restartPolicy: Always');
  });

  it('fails on bad YAML naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-inject-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'kind: Pod\nspec: [\n');
    let error: unknown;
    try {
      await run(['-f', bad]);
    } catch (err) {
      error = err;
    }
    expect(String(error)).to.contain(`${bad}: document 1`);
  });
});
