/**
 * The `isthmus` command. Each subcommand lives in src/cli/commands/<name>.ts and exports a
 * `register(program)` function; this file only assembles them.
 */
import { Command } from 'commander';
import { commands } from './commands/index.js';

const program = new Command('isthmus')
  .description('Isthmus: an Istio-compatible service mesh (controller, webhooks, sidecar proxy, CLI)')
  .showHelpAfterError()
  .enablePositionalOptions();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`isthmus: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = process.exitCode || 1;
}
