// Container images without Docker: a rootfs directory packed as a single-layer docker-archive tar
// (manifest.json + config JSON with rootfs.diff_ids + <id>/layer.tar), imported into containerd.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './exec.js';

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Packs `rootfs` into `outFile` (docker-archive) tagged `ref`. The layer is deterministic:
 * sorted names, numeric root ownership, fixed mtimes.
 */
export async function packDockerArchive(
  rootfs: string,
  ref: string,
  config: ImageConfig,
  outFile: string,
): Promise<void> {
  const staging = `${outFile}.staging`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const layerTmp = join(staging, 'layer.tar');
  await runOk('tar', [
    '--create',
    `--file=${layerTmp}`,
    `--directory=${rootfs}`,
    '--sort=name',
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--mtime=@0',
    '--format=gnu',
    '.',
  ]);
  const diffId = await sha256File(layerTmp);
  mkdirSync(join(staging, diffId));
  renameSync(layerTmp, join(staging, diffId, 'layer.tar'));
  const configJson = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: {
      Entrypoint: config.entrypoint ?? null,
      Cmd: config.cmd ?? null,
      Env: config.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      WorkingDir: config.workingDir ?? '/',
      User: config.user ?? '',
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'isthmus test/cluster image builder' }],
  });
  const configId = createHash('sha256').update(configJson).digest('hex');
  writeFileSync(join(staging, `${configId}.json`), configJson);
  writeFileSync(
    join(staging, 'manifest.json'),
    JSON.stringify([{ Config: `${configId}.json`, RepoTags: [ref], Layers: [`${diffId}/layer.tar`] }]),
  );
  await runOk('tar', [
    '--create',
    `--file=${outFile}.tmp`,
    `--directory=${staging}`,
    'manifest.json',
    `${configId}.json`,
    `${diffId}/layer.tar`,
  ]);
  renameSync(`${outFile}.tmp`, outFile);
  rmSync(staging, { recursive: true, force: true });
}
