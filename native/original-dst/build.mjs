#!/usr/bin/env node
// Builds the original-dst addon with node-gyp. node-gyp only reads the `nodedir` npm config
// when run by npm, and otherwise downloads headers from the internet, which our machines and
// CI cannot reach. Node installs built with headers (Debian's nodejs, official tarballs) ship
// them at <prefix>/include/node, so point node-gyp there when they exist.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');

const args = [nodeGyp, 'rebuild', '-C', here];
const prefix = dirname(dirname(process.execPath));
const configured = process.env.npm_config_nodedir;
if (configured) {
  args.push(`--nodedir=${configured}`);
} else if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}

const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
