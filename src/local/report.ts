/**
 * What `isthmus up` prints: the status once everything runs, then one line per mesh change,
 * per rejected document (once, not on every reload) and per new compiler warning.
 */
import { isAbsolute, relative } from 'node:path';
import type { SnapshotDiff } from '../compiler/index.js';
import type { RejectedDocument } from '../config-source/index.js';
import type { LocalPod } from './sidecar.js';

export interface StatusView {
  pods: readonly LocalPod[];
  frontUrl: string;
  frontService: string;
  /** Watched directory (shown relative when inside the working directory), or undefined. */
  meshDir: string | undefined;
  configs: readonly string[];
  version: string;
}

export class Reporter {
  private rejectedShown = new Set<string>();
  private warningsShown = new Set<string>();

  constructor(
    readonly print: (line: string) => void,
    private readonly meshDir: string,
  ) {}

  /** Absolute paths of the mesh directory, relative to the working directory (shorter lines). */
  shortPaths(text: string): string {
    const rel = relative(process.cwd(), this.meshDir);
    return rel.startsWith('..') || isAbsolute(rel) ? text : text.split(this.meshDir).join(rel || '.');
  }

  /** Prints rejected documents not already reported by the previous load. */
  rejected(list: readonly RejectedDocument[]): void {
    const now = new Set<string>();
    for (const r of list) {
      const messages = r.messages.map((m) => (m.startsWith(r.source) ? m : `${r.source}: ${m}`));
      const kept = r.keptPrevious ? 'keeping the last good version' : 'not applied';
      const line = `mesh: rejected ${this.shortPaths(messages.join('; '))} (${kept})`;
      now.add(line);
      if (!this.rejectedShown.has(line)) this.print(line);
    }
    this.rejectedShown = now;
  }

  /** Prints compiler warnings that are new since the last call. */
  warnings(list: Iterable<string>): void {
    const now = new Set(list);
    for (const w of now) if (!this.warningsShown.has(w)) this.print(`mesh: warning: ${w}`);
    this.warningsShown = now;
  }

  applied(version: string, diff: SnapshotDiff, updated: readonly string[]): void {
    const changes = diff.configs.map((c) => {
      const [kind, ns, name] = c.key.split('/');
      return `${kind} ${ns}/${name} ${!c.before ? 'added' : !c.after ? 'deleted' : 'changed'}`;
    });
    this.print(
      `mesh: config ${version.slice(0, 8)} applied${changes.length ? ` (${changes.join(', ')})` : ''}: ` +
        `${updated.length ? `updated sidecars ${updated.join(', ')}` : 'no sidecar changed'}`,
    );
  }

  appExit(pod: LocalPod): void {
    const tail = pod.app?.lastOutput().slice(-5) ?? [];
    this.print(
      `app ${pod.name} ${pod.app?.describeExit()} (its sidecar answers 503 until \`isthmus up\` is restarted)` +
        (tail.length ? `; last output:\n  ${tail.join('\n  ')}` : ''),
    );
  }

  status(v: StatusView): string[] {
    const rows = v.pods.map((p) => [
      p.name,
      p.ip,
      `127.0.0.1:${p.appPort}`,
      String(p.app?.pid ?? '-'),
      `http://${p.ip}:${p.proxy.adminPort}/`,
      `http://${p.ip}:${p.proxy.statsPort}/stats/prometheus`,
    ]);
    const head = ['pod', 'pod IP (sidecar)', 'app', 'pid', 'sidecar admin', 'metrics'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
    const watched = v.meshDir
      ? `${this.shortPaths(v.meshDir)} (watched: edit it to change routing live)`
      : '(none)';
    return [
      `isthmus up: ${v.pods.length} pods, each with its sidecar (explicit proxy: apps get HTTP_PROXY)`,
      '',
      `  front page: ${v.frontUrl}   (${v.frontService})`,
      '',
      fmt(head),
      ...rows.map(fmt),
      '',
      `mesh config: ${watched}`,
      `  ${v.configs.length ? v.configs.join(', ') : 'no VirtualServices or DestinationRules: default routing'}`,
      `  config version ${v.version.slice(0, 8)}`,
      '',
      'Press Ctrl-C to stop.',
    ];
  }
}
