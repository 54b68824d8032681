/**
 * A polling safety net for the watched mesh directory. fs.watch (recursive) on Linux in Node 20
 * misses some changes when editors save by writing a new file and renaming it over the old one
 * (vim, `sed -i`, "safe write"): a cheap fingerprint of names, inodes, sizes and mtimes is
 * compared every `intervalMs` and a difference triggers a reload (a no-op when the watcher
 * already picked the change up).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const MANIFEST = /\.(ya?ml|json)$/i;

export function fingerprint(dir: string): string {
  try {
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => MANIFEST.test(f))
      .sort();
    const parts: string[] = [];
    for (const f of files) {
      try {
        const st = statSync(join(dir, f));
        parts.push(`${f}:${st.ino}:${st.size}:${st.mtimeMs}`);
      } catch {
        parts.push(`${f}:gone`);
      }
    }
    return parts.join('|');
  } catch {
    return 'missing';
  }
}

/**
 * Calls `onChange` when the directory's fingerprint changed and then stayed the same for one
 * more interval (so a file caught mid-write is not loaded); returns the stop function.
 */
export function pollDirectory(dir: string, intervalMs: number, onChange: () => void): () => void {
  let settled = fingerprint(dir);
  let seen = settled;
  const timer = setInterval(() => {
    const now = fingerprint(dir);
    if (now !== seen) {
      seen = now;
      return;
    }
    if (now === settled) return;
    settled = now;
    onChange();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
