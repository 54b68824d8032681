/**
 * `isthmus proxy-config routes|clusters|endpoints|listeners <pod>[.<ns>] [-o text|json]`:
 * the config one sidecar holds, read from what was published for its workload class (the
 * same assembly its agent does). When the agent reports an older applied version than the
 * published one, a note on stderr says so (the sidecar still runs the older config).
 */
import type { Command } from 'commander';
import type { PublishedConfig } from '../../publish/inspect.js';
import type { Cluster, Listener, RouteConfig } from '../../tables/index.js';

export const SECTIONS = ['routes', 'clusters', 'endpoints', 'listeners'] as const;
export type Section = (typeof SECTIONS)[number];

function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((l) => (l[i] ?? '').length)));
  return all
    .map((l) =>
      l
        .map((c, i) => (c ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

interface TablesDoc {
  listeners?: Listener[];
  routeConfigs?: RouteConfig[];
  clusters?: Cluster[];
}

/** The JSON of one section (what `-o json` prints). */
export function sectionJson(cfg: PublishedConfig, section: Section): unknown {
  const t = cfg.tables as TablesDoc;
  if (section === 'routes') return t.routeConfigs ?? [];
  if (section === 'clusters') return t.clusters ?? [];
  if (section === 'listeners') return t.listeners ?? [];
  return cfg.endpoints;
}

export function renderSection(cfg: PublishedConfig, section: Section): string {
  const t = cfg.tables as TablesDoc;
  if (section === 'listeners')
    return table(
      ['NAME', 'DIRECTION', 'PORT', 'PROTOCOL', 'DESTINATION'],
      (t.listeners ?? []).map((l) => [
        l.name,
        l.direction,
        String(l.port),
        l.protocol,
        l.routeConfig
          ? `route: ${l.routeConfig}`
          : l.routeByPort
            ? 'route by port'
            : l.l4Routes?.length
              ? `${l.l4Routes.length} l4 routes${l.cluster ? `, else cluster: ${l.cluster}` : ''}`
              : l.cluster
                ? `cluster: ${l.cluster}`
                : '-',
      ]),
    );
  if (section === 'clusters') {
    const counts = cfg.endpoints.clusters;
    return table(
      ['NAME', 'SERVICE', 'LB', 'ENDPOINTS'],
      (t.clusters ?? []).map((c) => [
        c.name,
        c.service ? `${c.service.name}.${c.service.namespace}` : '-',
        c.lbPolicy ?? 'ROUND_ROBIN',
        String(counts[c.name]?.length ?? 0),
      ]),
    );
  }
  if (section === 'endpoints') {
    const rows: string[][] = [];
    for (const [cluster, eps] of Object.entries(cfg.endpoints.clusters))
      for (const e of eps) rows.push([`${e.address}:${e.port}`, e.health ?? 'HEALTHY', cluster]);
    return table(['ENDPOINT', 'STATUS', 'CLUSTER'], rows);
  }
  const rows: string[][] = [];
  for (const rc of t.routeConfigs ?? [])
    for (const vh of rc.virtualHosts)
      vh.routes.forEach((r, i) => {
        const match = r.match ? JSON.stringify(r.match) : '/*';
        const to = r.forward
          ? r.forward.clusters
              .map((c) => `${c.cluster}${c.weight !== undefined ? ` ${c.weight}%` : ''}`)
              .join(', ')
          : r.redirect
            ? 'redirect'
            : r.directResponse
              ? `direct ${r.directResponse.status}`
              : '-';
        rows.push([rc.name, vh.name, i === 0 ? vh.domains.slice(0, 3).join(',') : '', match, to]);
      });
  return table(['ROUTE', 'VIRTUAL HOST', 'DOMAINS', 'MATCH', 'DESTINATION'], rows);
}

export function parsePodRef(ref: string, defaultNamespace: string): { pod: string; namespace: string } {
  const dot = ref.indexOf('.');
  return dot > 0
    ? { pod: ref.slice(0, dot), namespace: ref.slice(dot + 1) }
    : { pod: ref, namespace: defaultNamespace };
}

export function register(program: Command): void {
  program
    .command('proxy-config')
    .description("Show one sidecar's routes, clusters, endpoints or listeners")
    .argument('<section>', SECTIONS.join('|'))
    .argument('<pod>', 'pod name, or <pod>.<namespace>')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster, then ~/.kube/config)')
    .option('-n, --namespace <ns>', 'namespace of the pod', 'default')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      async (
        section: string,
        ref: string,
        opts: { kubeconfig?: string; namespace: string; output: string },
      ) => {
        if (!(SECTIONS as readonly string[]).includes(section))
          throw new Error(`unknown section "${section}": one of ${SECTIONS.join(', ')}`);
        const { loadKubeConfig } = await import('../../controller/kube.js');
        const { restFromKubeConfig } = await import('../../config-source/kubernetes-rest.js');
        const { podConfig, syncState } = await import('../../publish/inspect.js');
        const { pod, namespace } = parsePodRef(ref, opts.namespace);
        const rest = restFromKubeConfig(loadKubeConfig(opts.kubeconfig), 'isthmus-cli');
        try {
          const cfg = await podConfig(rest, namespace, pod);
          const state = syncState(cfg);
          if (state.state !== 'SYNCED')
            process.stderr.write(
              `note: sidecar ${pod}.${namespace} is ${state.state} (applied tables ${cfg.applied?.tables ?? 'unknown'}, ` +
                `endpoints ${cfg.applied?.endpoints ?? 'unknown'}); showing the latest published config\n`,
            );
          const s = section as Section;
          process.stdout.write(
            opts.output === 'json'
              ? `${JSON.stringify(sectionJson(cfg, s), null, 2)}\n`
              : `${renderSection(cfg, s)}\n`,
          );
        } finally {
          rest.close();
        }
      },
    );
}
