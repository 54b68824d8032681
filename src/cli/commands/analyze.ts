/** `isthmus analyze -f FILE_OR_DIR`: the webhook's verdicts offline, plus cross-resource warnings. */
import type { Command } from 'commander';
import { analyze } from '../../validation/analyze.js';
import { formatFinding } from '../../validation/resource.js';
import { loadDocuments } from '../documents.js';

export function register(program: Command): void {
  program
    .command('analyze')
    .description(
      'Validate mesh config files offline (same verdicts as the validating webhook) and warn about cross-resource problems',
    )
    .requiredOption('-f, --filename <path...>', 'files or directories (recursive) of YAML/JSON; - for stdin')
    .option('-n, --namespace <ns>', 'namespace for documents that do not set one', 'default')
    .option('--root-namespace <ns>', 'the mesh root namespace', 'istio-system')
    .option('-o, --output <format>', 'text or json', 'text')
    .action((opts: { filename: string[]; namespace: string; rootNamespace: string; output: string }) => {
      const loaded = loadDocuments(opts.filename);
      const results = analyze(loaded.docs, {
        defaultNamespace: opts.namespace,
        rootNamespace: opts.rootNamespace,
      });
      const errors =
        loaded.errors.length +
        results.reduce((n, r) => n + r.findings.filter((f) => f.severity === 'error').length, 0);
      const warnings = results.reduce(
        (n, r) => n + r.findings.filter((f) => f.severity === 'warning').length,
        0,
      );
      if (opts.output === 'json') {
        process.stdout.write(
          `${JSON.stringify({ loadErrors: loaded.errors, results, errors, warnings }, null, 2)}\n`,
        );
      } else {
        for (const e of loaded.errors) process.stdout.write(`Error: ${e}\n`);
        for (const r of results) {
          for (const f of r.findings) {
            const label = f.severity === 'error' ? 'Error' : 'Warning';
            process.stdout.write(`${label} [${r.source}]: ${formatFinding(r.ref, f)}\n`);
          }
        }
        const checked = results.filter((r) => r.meshKind).length;
        process.stdout.write(
          errors || warnings
            ? `\n${checked} mesh resources checked: ${errors} error(s), ${warnings} warning(s)\n`
            : `\u2714 No validation issues found when analyzing ${checked} mesh resources.\n`,
        );
      }
      if (errors) process.exitCode = 1;
    });
}
