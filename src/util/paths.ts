/** Where the project's data folders are, from both `src/` (tsx) and `dist/` (built) layouts. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: this file is at <root>/{src,dist}/util/paths.{ts,js}. */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CRDS_DIR = join(PROJECT_ROOT, 'crds');
export const CONFIG_DIR = join(PROJECT_ROOT, 'config');
export const WEBHOOKS_DIR = join(PROJECT_ROOT, 'webhooks');
