// Assembles image root filesystems from the host's own files: binaries with the shared libraries
// `ldd` reports, busybox-static as the shell, and a minimal /etc.
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { runOk } from './exec.js';

function copyFile(rootfs: string, src: string, dest = src): void {
  const target = join(rootfs, dest);
  if (existsSync(target)) return;
  mkdirSync(dirname(target), { recursive: true });
  cpSync(realpathSync(src), target, { dereference: true });
}

/** Paths of the shared libraries (and the dynamic loader) `file` needs. */
export async function sharedLibraries(file: string): Promise<string[]> {
  const out = await runOk('ldd', [file]).catch((err: Error) => {
    // static binaries: "not a dynamic executable" (exit 1)
    if (/not a dynamic executable|statically linked/.test(err.message)) return '';
    throw err;
  });
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/** Copies `file` (dereferenced) to the same path in `rootfs`, with every library it links. */
export async function addBinary(rootfs: string, file: string, dest = file): Promise<void> {
  copyFile(rootfs, file, dest);
  for (const lib of await sharedLibraries(file)) copyFile(rootfs, lib);
}

/** A shared object loaded with dlopen (e.g. xtables modules): the file and its libraries. */
export async function addLibrary(rootfs: string, file: string): Promise<void> {
  await addBinary(rootfs, file);
}

export function addSymlink(rootfs: string, target: string, path: string): void {
  const full = join(rootfs, path);
  if (existsSync(full)) return;
  mkdirSync(dirname(full), { recursive: true });
  symlinkSync(target, full);
}

/** busybox-static as /bin/busybox with links for its applets (never replacing a real file). */
export async function addBusybox(rootfs: string): Promise<void> {
  copyFile(rootfs, '/bin/busybox');
  const applets = (await runOk('/bin/busybox', ['--list-full'])).split('\n').filter(Boolean);
  for (const applet of applets) addSymlink(rootfs, '/bin/busybox', `/${applet}`);
}

/** iptables-nft (multi-call binary, its names and every xtables module) for `isthmus iptables`. */
export async function addIptables(rootfs: string): Promise<void> {
  const multi = '/usr/sbin/xtables-nft-multi';
  await addBinary(rootfs, multi);
  for (const name of [
    'iptables',
    'iptables-save',
    'iptables-restore',
    'ip6tables',
    'ip6tables-save',
    'ip6tables-restore',
    'iptables-nft',
    'iptables-nft-save',
    'iptables-nft-restore',
    'ip6tables-nft',
    'ip6tables-nft-save',
    'ip6tables-nft-restore',
  ]) {
    addSymlink(rootfs, 'xtables-nft-multi', `/usr/sbin/${name}`);
  }
  const modules = '/usr/lib/x86_64-linux-gnu/xtables';
  for (const so of readdirSync(modules)) await addLibrary(rootfs, join(modules, so));
  // iptables-nft reads protocol and service names
  for (const f of ['/etc/protocols', '/etc/services', '/etc/ethertypes'])
    if (existsSync(f)) copyFile(rootfs, f);
}

/** /etc/passwd, group, nsswitch, /tmp; UIDs 1337 (the proxy) and 1000 (the controller) are named. */
export function addBaseFiles(rootfs: string): void {
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nisthmus:x:1000:1000:isthmus:/tmp:/bin/sh\nistio-proxy:x:1337:1337:istio-proxy:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n',
  );
  writeFileSync(
    join(rootfs, 'etc/group'),
    'root:x:0:\nisthmus:x:1000:\nistio-proxy:x:1337:\nnogroup:x:65534:\n',
  );
  writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  for (const f of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) writeFileSync(join(rootfs, f), '');
  for (const d of ['tmp', 'root', 'proc', 'sys', 'dev', 'var/tmp'])
    mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  chmodSync(join(rootfs, 'var/tmp'), 0o1777);
  const certs = '/etc/ssl/certs/ca-certificates.crt';
  if (existsSync(certs)) copyFile(rootfs, certs);
}

/** node (from PATH) as /usr/local/bin/node plus its libraries. */
export async function addNode(rootfs: string): Promise<void> {
  const node = realpathSync(process.execPath);
  await addBinary(rootfs, node, '/usr/local/bin/node');
  addSymlink(rootfs, '/usr/local/bin/node', '/usr/bin/node');
}

/** Writes ld.so.cache for the rootfs so libraries resolve without relying on built-in paths. */
export async function finishRootfs(rootfs: string): Promise<void> {
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/ld.so.conf'), '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n');
  await runOk('ldconfig', ['-r', rootfs]);
}
