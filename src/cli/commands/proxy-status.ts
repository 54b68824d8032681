/**
 * `isthmus proxy-status [-n NS] [--kubeconfig F] [-o text|json]`: every sidecar with the
 * config version it reported applying vs the latest published for its workload class:
 * SYNCED, STALE (with how long), REJECTED (the proxy refused the latest; it keeps the last
 * good one) or UNKNOWN (its agent never reported). Reads ConfigMaps only.
 */
import type { Command } from 'commander';
import type { ProxyStatusRow } from '../../publish/inspect.js';

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function cell(state: string, applied: string | undefined, latest: string, row: ProxyStatusRow): string {
  if (!applied) return 'UNKNOWN';
  if (applied === latest) return `SYNCED (${latest.slice(0, 8)})`;
  const age = row.staleForMs !== undefined ? ` ${formatDuration(row.staleForMs)}` : '';
  return `${state === 'REJECTED' && row.applied?.rejected === latest ? 'REJECTED' : 'STALE'}${age} (${applied.slice(0, 8)} -> ${latest.slice(0, 8)})`;
}

/** Text table, one line per sidecar. */
export function renderProxyStatus(rows: readonly ProxyStatusRow[]): string {
  const header = ['NAME', 'NAMESPACE', 'STATUS', 'TABLES', 'ENDPOINTS', 'APPLIED AT'];
  const lines = rows.map((r) => [
    r.pod,
    r.namespace,
    r.state === 'STALE' || r.state === 'REJECTED'
      ? `${r.state} ${formatDuration(r.staleForMs ?? 0)}`
      : r.state,
    cell(r.state, r.applied?.tables, r.latest.tables, r),
    cell(r.state, r.applied?.endpoints, r.latest.endpoints, r),
    r.applied?.at ?? '-',
  ]);
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i]!.length)));
  return all
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function register(program: Command): void {
  program
    .command('proxy-status')
    .description('Show every sidecar: applied config version vs the latest published (SYNCED / STALE)')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then ~/.kube/config)')
    .option('-n, --namespace <ns>', 'only this namespace (default: all)')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (opts: { kubeconfig?: string; namespace?: string; output: string }) => {
      const { loadKubeConfig } = await import('../../controller/kube.js');
      const { restFromKubeConfig } = await import('../../config-source/kubernetes-rest.js');
      const { proxyStatus } = await import('../../publish/inspect.js');
      const rest = restFromKubeConfig(loadKubeConfig(opts.kubeconfig), 'isthmus-cli');
      try {
        const rows = await proxyStatus(rest, opts.namespace ? { namespace: opts.namespace } : {});
        process.stdout.write(
          opts.output === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : `${renderProxyStatus(rows)}\n`,
        );
        if (rows.some((r) => r.state !== 'SYNCED')) process.exitCode = 2;
      } finally {
        rest.close();
      }
    });
}
