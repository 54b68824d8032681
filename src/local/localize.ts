/**
 * Adapts a workload's compiled tables to one local instance. In a pod, iptables sends inbound
 * traffic for <podIP>:<port> to the sidecar (15006), which calls the app on 127.0.0.1:<port>.
 * Locally there is no capture and all apps share 127.0.0.1, so:
 *   - the inbound listener is bound on <podIP>:<port> itself (one per service port; what the
 *     other sidecars' endpoints point at), and
 *   - the inbound cluster of the first port goes to the app's own port on 127.0.0.1.
 * Endpoints are inlined, so routes and endpoints swap atomically. Compiler output is shared
 * between workloads: nothing here mutates it.
 */
import type { CompileResult } from '../compiler/index.js';
import { clusterName, type Endpoint, type Listener, type ProxyTables } from '../tables/index.js';

export const OUTBOUND_LISTENER = 'virtualOutbound';
const INBOUND_LISTENER = 'virtualInbound';

function inboundListeners(l: Listener, ports: readonly number[]): Listener[] {
  if (ports.length === 0) return [];
  return ports.map((port) => ({
    ...l,
    name: ports.length === 1 ? INBOUND_LISTENER : `${INBOUND_LISTENER}_${port}`,
    port,
  }));
}

/**
 * `inboundPorts`: the workload's service target ports (the first is the app's `PORT`);
 * `appPort`: where the app listens on 127.0.0.1 for that first port.
 */
export function localTables(r: CompileResult, inboundPorts: readonly number[], appPort: number): ProxyTables {
  const listeners: Listener[] = [];
  for (const l of r.tables.listeners) {
    if (l.name === INBOUND_LISTENER) listeners.push(...inboundListeners(l, inboundPorts));
    else listeners.push(l);
  }
  const endpoints: Record<string, Endpoint[]> = { ...r.endpoints.clusters };
  const first = inboundPorts[0];
  if (first !== undefined) {
    const name = clusterName({ direction: 'inbound', port: first, subset: '', host: '' });
    if (endpoints[name]) endpoints[name] = [{ address: '127.0.0.1', port: appPort }];
  }
  return {
    ...r.tables,
    listeners,
    endpoints,
  };
}

/** What decides whether a pod's proxy needs a new config. */
export function configKey(r: CompileResult): string {
  return `${r.tables.version}|${r.endpoints.version}`;
}
