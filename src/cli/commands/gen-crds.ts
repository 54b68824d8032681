/** `isthmus gen-crds`: writes crds/ from the TypeScript schemas (the one source of truth). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { renderCrdFiles } from '../../api/crd-files.js';
import { CRDS_DIR } from '../../util/paths.js';

export function register(program: Command): void {
  program
    .command('gen-crds')
    .description('Regenerate the CustomResourceDefinitions in crds/ from the mesh API schemas')
    .option('--out <dir>', 'output directory', CRDS_DIR)
    .action((opts: { out: string }) => {
      mkdirSync(opts.out, { recursive: true });
      for (const [file, text] of renderCrdFiles()) writeFileSync(join(opts.out, file), text);
      process.stdout.write(`wrote ${renderCrdFiles().size} CRDs to ${opts.out}\n`);
    });
}
