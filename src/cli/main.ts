/**
 * The `isthmus` command. Each subcommand lives in src/cli/commands/<name>.ts and exports a
 * `register(program)` function; this file only assembles them.
 *
 * `isthmus proxy` (the sidecar, one per pod) loads only its own command module: the others pull
 * in the controller, injector, validation and YAML tooling, megabytes of RSS a sidecar does not
 * use (bench/proxy/RESULTS.md).
 */
import { Command } from 'commander';

const program = new Command('isthmus')
  .description('Isthmus: an Istio-compatible service mesh (controller, webhooks, sidecar proxy, CLI)')
  .showHelpAfterError()
  .enablePositionalOptions();

const registers =
  process.argv[2] === 'proxy'
    ? [(await import('./commands/proxy.js')).register]
    : (await import('./commands/index.js')).commands;
for (const register of registers) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`isthmus: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = process.exitCode || 1;
}
