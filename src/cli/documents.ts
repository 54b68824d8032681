/** Reads Kubernetes documents from files, directories (recursively) or stdin (`-`). */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { SourceDocument } from '../validation/analyze.js';

export interface LoadResult {
  docs: SourceDocument[];
  /** Files or documents that could not be read, each naming the file, document and reason. */
  errors: string[];
}

const MANIFEST = /\.(ya?ml|json)$/i;

function expand(path: string): string[] {
  if (path === '-') return ['-'];
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: 'utf8' })
    .filter((f) => MANIFEST.test(f))
    .sort()
    .map((f) => join(path, f))
    .filter((f) => statSync(f).isFile());
}

/** Parses multi-document YAML (JSON is YAML); `List` kinds are flattened into their items. */
export function parseDocuments(text: string, source: string, into: LoadResult): void {
  let index = 0;
  for (const doc of parseAllDocuments(text, { prettyErrors: true })) {
    const here = `${source}#${index}`;
    index++;
    if (doc.errors.length) {
      const e = doc.errors[0]!;
      into.errors.push(`${here}: invalid YAML: ${e.message.split('\n')[0]}`);
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (obj === null || obj === undefined) continue;
    if (typeof obj === 'object' && !Array.isArray(obj) && (obj as { kind?: unknown }).kind === 'List') {
      const items = (obj as { items?: unknown }).items;
      (Array.isArray(items) ? items : []).forEach((item, i) =>
        into.docs.push({ source: `${here}.items[${i}]`, object: item }),
      );
      continue;
    }
    into.docs.push({ source: here, object: obj });
  }
}

export function loadDocuments(
  paths: string[],
  readStdin: () => string = () => readFileSync(0, 'utf8'),
): LoadResult {
  const result: LoadResult = { docs: [], errors: [] };
  for (const p of paths) {
    let files: string[];
    try {
      files = expand(p);
    } catch (err) {
      result.errors.push(
        `${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`,
      );
      continue;
    }
    for (const file of files) {
      let text: string;
      try {
        text = file === '-' ? readStdin() : readFileSync(file, 'utf8');
      } catch (err) {
        result.errors.push(`${file}: cannot read: ${(err as Error).message}`);
        continue;
      }
      parseDocuments(text, file === '-' ? '<stdin>' : file, result);
    }
  }
  return result;
}
