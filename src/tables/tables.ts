/**
 * The root document of the compiled config: everything one proxy needs except endpoints,
 * which may come inline (static configs, tests) or as a separate EndpointTable.
 */
import { ClusterSchema, EndpointSchema, WorkloadSchema } from './clusters.js';
import { List, MapOf, NonEmpty, Obj, Opt, type Static, Str, Type } from './kit.js';
import { ListenerSchema } from './listeners.js';
import { RouteConfigSchema } from './routes.js';
import { InboundSecuritySchema } from './security.js';
import { TelemetrySchema } from './telemetry.js';
import { InboundMtlsSchema } from './tls.js';

export const TABLES_API_VERSION = 'isthmus.io/tables/v1';

export const ProxyTablesSchema = Obj({
  apiVersion: Type.Literal(TABLES_API_VERSION, { description: 'Version of this contract.' }),
  version: NonEmpty('Revision of the config (e.g. a hash or counter); shown on admin/metrics.'),
  generatedAt: Opt(Str('RFC 3339 time the compiler produced it.')),
  node: Opt(WorkloadSchema),
  listeners: List(ListenerSchema),
  routeConfigs: List(RouteConfigSchema),
  clusters: List(ClusterSchema),
  endpoints: Opt(MapOf(List(EndpointSchema), 'Inline endpoints: cluster name -> endpoints.')),
  inboundMtls: Opt(InboundMtlsSchema),
  /** Inbound authorization, JWT and local rate limits (src/authz applies it). */
  security: Opt(InboundSecuritySchema),
  /** Mesh-wide access log (mesh config); absent = none (src/tables/telemetry.ts). */
  telemetry: Opt(TelemetrySchema),
});
export type ProxyTables = Static<typeof ProxyTablesSchema>;
