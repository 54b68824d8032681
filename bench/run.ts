/** `npm run bench`: runs every benchmark script in turn (or those named on the command line). */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;
const ALL: Record<string, string> = {
  validation: 'validation.ts',
  webhook: 'webhook.ts',
  proxy: 'proxy/run.ts',
  h2: 'proxy/h2.ts',
  compiler: 'compiler/run.ts',
  authz: 'authz/run.ts',
  ca: 'ca/run.ts',
};

const wanted = process.argv.slice(2);
for (const [name, file] of Object.entries(ALL)) {
  if (wanted.length && !wanted.includes(name)) continue;
  const path = join(here, file);
  if (!existsSync(path)) continue;
  console.log(`\n== ${name} (${file}) ==`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', path], { stdio: 'inherit' });
  if (res.status !== 0) console.log(`(${name} exited with ${res.status})`);
}
console.log(
  `\nmachine: ${(await import('node:os')).cpus()[0]?.model} x${(await import('node:os')).cpus().length}, node ${process.version}, ${new Date().toISOString()}`,
);
