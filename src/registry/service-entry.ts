/**
 * ServiceEntry registry: one MeshService per host, endpoints by resolution:
 * STATIC -> the listed endpoints (or pods/WorkloadEntries selected by workloadSelector),
 * DNS -> the listed endpoint addresses, or the host itself, as names the proxy resolves,
 * NONE -> no endpoints (traffic passes through to the original destination).
 */
import type { ServiceEntrySpec } from '../api/networking/service-entry.js';
import { resolveShortName } from './host.js';
import { metaOf, type Obj, obj, selects } from './kube-objects.js';
import { podIndex, workloadNameOf } from './kubernetes.js';
import { parseProtocol, protocolOfPort } from './protocol.js';
import type { Locality, MeshEndpoint, MeshService, Resolution, ServicePort } from './types.js';

export interface ServiceEntryResult {
  services: MeshService[];
  endpoints: Map<string, MeshEndpoint[]>;
}

function localityOf(s: string | undefined): Locality | undefined {
  if (!s) return undefined;
  const [region, zone, subzone] = s.split('/');
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subzone ? { subzone } : {}) };
}

function resolutionOf(spec: ServiceEntrySpec): Resolution {
  const r = spec.resolution ?? 'NONE';
  // DNS_ROUND_ROBIN / DYNAMIC_DNS differ only in how the proxy resolves: both are DNS here.
  return r === 'STATIC' ? 'STATIC' : r === 'NONE' ? 'NONE' : 'DNS';
}

export function servicesFromServiceEntry(o: Obj, pods: Obj[]): ServiceEntryResult {
  const meta = metaOf(o);
  const spec = obj(o.spec) as ServiceEntrySpec;
  const resolution = resolutionOf(spec);
  const ports: ServicePort[] = (spec.ports ?? [])
    .filter((p) => typeof p.number === 'number')
    .map((p) => ({
      name: p.name ?? String(p.number),
      port: p.number!,
      ...(p.targetPort ? { targetPort: p.targetPort } : {}),
      protocol: parseProtocol(p.protocol) ?? protocolOfPort(p.name),
    }))
    .sort((a, b) => a.port - b.port);
  const selector = spec.workloadSelector?.labels;
  const out: ServiceEntryResult = { services: [], endpoints: new Map() };
  for (const rawHost of spec.hosts ?? []) {
    const hostname = resolveShortName(rawHost, meta.namespace);
    const svc: MeshService = {
      key: `${meta.namespace}/${hostname}`,
      hostname,
      name: hostname,
      namespace: meta.namespace,
      ports,
      addresses: [...(spec.addresses ?? [])].sort(),
      exportTo: [...(spec.exportTo ?? [])].sort(),
      resolution,
      meshExternal: spec.location !== 'MESH_INTERNAL',
      registry: 'ServiceEntry',
      ...(selector ? { selector: { ...selector } } : {}),
      ...(meta.creationTimestamp ? { creationTimestamp: meta.creationTimestamp } : {}),
    };
    out.services.push(svc);
    const eps = endpointsOf(svc, spec, rawHost, selector, pods);
    if (eps.length) out.endpoints.set(svc.key, eps);
  }
  return out;
}

function endpointsOf(
  svc: MeshService,
  spec: ServiceEntrySpec,
  host: string,
  selector: Record<string, string> | undefined,
  pods: Obj[],
): MeshEndpoint[] {
  const defaultPorts = (): Record<string, number> =>
    Object.fromEntries(
      svc.ports.map((p) => [
        p.name,
        typeof p.targetPort === 'number' && p.targetPort > 0 ? p.targetPort : p.port,
      ]),
    );
  if (svc.resolution === 'NONE') return [];
  if (selector) {
    // workloadSelector: the selected pods in the ServiceEntry's namespace are its endpoints.
    const out: MeshEndpoint[] = [];
    for (const info of podIndex(pods).values()) {
      if (info.meta.namespace !== svc.namespace || !selects(selector, info.meta.labels)) continue;
      const raw = pods.find(
        (p) => metaOf(p).name === info.meta.name && metaOf(p).namespace === svc.namespace,
      );
      const ip = obj(obj(raw).status).podIP;
      if (typeof ip !== 'string' || !ip) continue;
      out.push({
        address: ip,
        ports: defaultPorts(),
        labels: info.meta.labels,
        namespace: svc.namespace,
        ...(info.serviceAccount ? { serviceAccount: info.serviceAccount } : {}),
        workloadName: workloadNameOf(info.meta),
        podName: info.meta.name,
        ready: true,
      });
    }
    return out;
  }
  if (spec.endpoints?.length) {
    return spec.endpoints
      .filter((e) => typeof e.address === 'string' && e.address && !e.address.startsWith('unix://'))
      .map((e) => {
        const locality = localityOf(e.locality);
        return {
          address: e.address!,
          ports: { ...defaultPorts(), ...(e.ports ?? {}) },
          labels: { ...(e.labels ?? {}) },
          namespace: svc.namespace,
          ...(e.serviceAccount ? { serviceAccount: e.serviceAccount } : {}),
          ...(locality ? { locality } : {}),
          ...(e.weight ? { weight: e.weight } : {}),
          ready: true,
        };
      });
  }
  // DNS without endpoints: the host itself is the endpoint; the proxy resolves it later.
  if (svc.resolution === 'DNS' && !host.startsWith('*')) {
    return [{ address: host, ports: defaultPorts(), labels: {}, namespace: svc.namespace, ready: true }];
  }
  return [];
}
