/**
 * `isthmus analyze -f FILE_OR_DIR`: the webhook's verdicts offline, plus cross-resource warnings.
 * Text output is istioctl analyze's line format, one finding per line:
 *   Warning [IST0101] (VirtualService shop/reviews reviews.yaml#0) spec.http[0].route[1].destination.subset: subset "v9" ...
 * i.e. `Level [CODE] (Kind namespace/name origin) path: message`, where the origin is the file
 * and document index (istioctl puts file:line there). Findings without an analysis code are
 * schema verdicts: IST0106 SchemaValidationError (errors) and IST0133 SchemaWarning (warnings),
 * as the controller writes them into status.validationMessages.
 */
import type { Command } from 'commander';
import { type AnalyzedDocument, analyze } from '../../validation/analyze.js';
import type { Finding } from '../../validation/findings.js';
import { MESSAGES, messageNameOf } from '../../validation/messages.js';
import { loadDocuments } from '../documents.js';

/** The Istio analysis message type of a finding (status.ts maps findings the same way). */
export function messageOf(f: Finding): (typeof MESSAGES)[keyof typeof MESSAGES] {
  return MESSAGES[messageNameOf(f)];
}

/** One istioctl-style line: `Warning [IST0101] (VirtualService shop/reviews a.yaml#0) path: message`. */
export function formatAnalyzeLine(r: AnalyzedDocument, f: Finding): string {
  const level = f.severity === 'error' ? 'Error' : 'Warning';
  const where = f.path ? `${f.path}: ` : '';
  return `${level} [${messageOf(f).code}] (${r.ref.kind} ${r.ref.namespace}/${r.ref.name} ${r.source}) ${where}${f.message}`;
}

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
      if (opts.output !== 'text' && opts.output !== 'json')
        throw new Error(`--output ${JSON.stringify(opts.output)} is not supported; use text or json`);
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
        const withCodes = results.map((r) => ({
          ...r,
          findings: r.findings.map((f) => {
            const m = messageOf(f);
            return { ...f, code: m.code, codeName: m.name };
          }),
        }));
        process.stdout.write(
          `${JSON.stringify({ loadErrors: loaded.errors, results: withCodes, errors, warnings }, null, 2)}\n`,
        );
      } else {
        for (const e of loaded.errors) process.stdout.write(`Error: ${e}\n`);
        for (const r of results)
          for (const f of r.findings) process.stdout.write(`${formatAnalyzeLine(r, f)}\n`);
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
