// The cluster's images, built from the host's files, cached by a content hash of their inputs
// (tar in the cache dir, label on the image in containerd) so reruns skip both build and import.
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterCacheDir, IMAGES } from './config.js';
import { log, run, runOk } from './exec.js';
import { type ImageConfig, packDockerArchive } from './image.js';
import { addBaseFiles, addBusybox, addIptables, addNode, finishRootfs } from './rootfs.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILDER_VERSION = 'v1';
const HASH_LABEL = 'isthmus.io/content-hash';

export type Ctr = (args: string[]) => Promise<string>;

interface ImageRecipe {
  ref: string;
  /** Strings and files whose content decides the image. */
  inputs(): Promise<string[]> | string[];
  build(rootfs: string): Promise<void>;
  config: ImageConfig;
}

function listFiles(dir: string, skip: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const p = join(d, entry.name);
      if (skip(p)) continue;
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** Content of small files, size+mtime of big ones (binaries). */
function hashInputs(inputs: string[]): string {
  const hash = createHash('sha256').update(BUILDER_VERSION);
  for (const input of inputs) {
    hash.update(`\0${input}\0`);
    if (!input.startsWith('/') || !existsSync(input)) continue;
    const st = statSync(input);
    if (st.size > 4 * 1024 * 1024) hash.update(`${st.size}:${st.mtimeMs}`);
    else hash.update(readFileSync(input));
  }
  return hash.digest('hex').slice(0, 16);
}

async function imageHashInContainerd(ctr: Ctr, ref: string): Promise<string | undefined> {
  const out = await ctr(['images', 'ls', `name==${ref}`]).catch(() => '');
  return new RegExp(`${HASH_LABEL.replace(/[./]/g, '\\$&')}=(\\w+)`).exec(out)?.[1];
}

/** Builds (or reuses) the image tar and imports it unless containerd already has this content. */
async function ensureImage(ctr: Ctr, recipe: ImageRecipe): Promise<void> {
  const started = Date.now();
  const hash = hashInputs(await recipe.inputs());
  if ((await imageHashInContainerd(ctr, recipe.ref)) === hash) return;
  const dir = join(clusterCacheDir(), 'images');
  mkdirSync(dir, { recursive: true });
  const name = recipe.ref.replace(/^.*\//, '').replace(/[:]/g, '-');
  const tar = join(dir, `${name}-${hash}.tar`);
  if (!existsSync(tar)) {
    for (const old of readdirSync(dir))
      if (old.startsWith(`${name}-`)) rmSync(join(dir, old), { recursive: true, force: true });
    const rootfs = join(dir, `${name}-${hash}.rootfs`);
    rmSync(rootfs, { recursive: true, force: true });
    mkdirSync(rootfs, { recursive: true });
    try {
      await recipe.build(rootfs);
      await finishRootfs(rootfs);
      await packDockerArchive(rootfs, recipe.ref, recipe.config, tar);
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  }
  await ctr(['images', 'import', '--snapshotter=overlayfs', tar]);
  await ctr(['images', 'label', recipe.ref, `${HASH_LABEL}=${hash}`]);
  log(`image ${recipe.ref} (${hash}) ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

function pauseSource(): string {
  const fromEnv = process.env.ISTHMUS_PAUSE_SOURCE;
  const candidates = [
    ...(fromEnv ? [fromEnv] : []),
    join(clusterCacheDir(), '..', 'k8s-1.20.2', 'src', 'build', 'pause', 'linux', 'pause.c'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found)
    throw new Error(
      `[cluster] pause.c not found (looked in ${candidates.join(', ')}); run test/envtest/provision.sh`,
    );
  return found;
}

const pause: ImageRecipe = {
  ref: IMAGES.pause,
  inputs: () => [pauseSource()],
  async build(rootfs) {
    await runOk('gcc', [
      '-Os',
      '-Wall',
      '-Werror',
      '-static',
      '-DVERSION=v3.4.1-isthmus',
      '-o',
      join(rootfs, 'pause'),
      pauseSource(),
    ]);
  },
  config: { entrypoint: ['/pause'] },
};

/** Production packages from package-lock.json (no devDependencies), as node_modules paths. */
function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([path, meta]) => path.startsWith('node_modules/') && !meta.dev && !meta.link)
    .map(([path]) => path)
    .filter((path) => existsSync(join(REPO_ROOT, path)));
}

// Build leftovers of native addons that the runtime never loads.
const SKIP_IN_MODULES = /\/(obj\.target|\.deps|vendor|deps\/re2|\.github)(\/|$)|\.(o|a|d|md)$/;
const APP_DIRS = ['bin', 'crds', 'config', 'webhooks'];
const ORIGINAL_DST = 'native/original-dst/build/Release/original_dst.node';
const RE2_ADDON = 'node_modules/re2/build/Release/re2.node';

const project: ImageRecipe = {
  ref: IMAGES.project,
  inputs() {
    const srcFiles = listFiles(join(REPO_ROOT, 'src'));
    const appFiles = APP_DIRS.flatMap((d) => listFiles(join(REPO_ROOT, d)));
    return [
      realpathSync(process.execPath),
      '/usr/sbin/xtables-nft-multi',
      ...[
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        ORIGINAL_DST,
        RE2_ADDON,
      ].map((f) => join(REPO_ROOT, f)),
      ...srcFiles,
      ...appFiles,
    ];
  },
  async build(rootfs) {
    await addNode(rootfs);
    await addIptables(rootfs);
    await addBusybox(rootfs);
    addBaseFiles(rootfs);
    const app = join(rootfs, 'app');
    mkdirSync(app, { recursive: true });
    // Compile into the image, never into the shared work tree (bin/isthmus.js prefers dist/).
    const tsc = await run(
      join(REPO_ROOT, 'node_modules/.bin/tsc'),
      ['-p', 'tsconfig.build.json', '--outDir', join(app, 'dist')],
      {
        cwd: REPO_ROOT,
      },
    );
    if (!existsSync(join(app, 'dist/cli/main.js')))
      throw new Error(`[cluster] tsc produced no dist/cli/main.js: ${tsc.stdout}${tsc.stderr}`);
    if (tsc.code !== 0)
      log(`tsc reported errors (emitted anyway):\n${tsc.stdout.split('\n').slice(0, 10).join('\n')}`);
    for (const f of ['package.json', ...APP_DIRS])
      cpSync(join(REPO_ROOT, f), join(app, f), { recursive: true });
    cpSync(join(REPO_ROOT, ORIGINAL_DST), join(app, ORIGINAL_DST));
    for (const pkg of productionPackages()) {
      const from = join(REPO_ROOT, pkg);
      cpSync(from, join(app, pkg), {
        recursive: true,
        dereference: true,
        filter: (src) => {
          const rel = relative(from, src);
          return !rel.startsWith('node_modules') && !SKIP_IN_MODULES.test(`/${rel}`);
        },
      });
    }
  },
  config: {
    entrypoint: ['node', '/app/bin/isthmus.js'],
    workingDir: '/app',
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'],
  },
};

const bookinfo: ImageRecipe = {
  ref: IMAGES.bookinfo,
  inputs: () => [realpathSync(process.execPath), ...listFiles(join(REPO_ROOT, 'examples', 'bookinfo'))],
  async build(rootfs) {
    await addNode(rootfs);
    await addBusybox(rootfs);
    addBaseFiles(rootfs);
    cpSync(join(REPO_ROOT, 'examples', 'bookinfo'), join(rootfs, 'app', 'examples', 'bookinfo'), {
      recursive: true,
      filter: (src) => !/\/k8s(\/|$)/.test(src),
    });
  },
  config: { entrypoint: ['node'], workingDir: '/app/examples/bookinfo', user: '1000:1000' },
};

export const ensurePauseImage = (ctr: Ctr): Promise<void> => ensureImage(ctr, pause);
export const ensureProjectImage = (ctr: Ctr): Promise<void> => ensureImage(ctr, project);
export const ensureBookinfoImage = (ctr: Ctr): Promise<void> => ensureImage(ctr, bookinfo);
