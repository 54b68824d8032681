/**
 * PeerAuthentication -> the inbound mTLS mode of one workload, per port. Istio's precedence:
 * a policy with a workload selector (in the workload's namespace) > a namespace-wide policy
 * (no selector) > the mesh-wide policy (root namespace, no selector); several at one level:
 * the oldest wins (the snapshot lists configs oldest first). `UNSET` inherits from the level
 * above; nothing set = PERMISSIVE. `portLevelMtls` (keyed by workload port) counts only on a
 * policy with a selector.
 */
import type { MutualTLS, PeerAuthenticationSpec } from '../api/security/peer-authentication.js';
import { selects } from '../registry/kube-objects.js';
import type { ConfigResource, MeshSnapshot, WorkloadIdentity } from '../registry/types.js';
import type { InboundMtls, InboundMtlsMode } from '../tables/index.js';
import type { Warn } from './warnings.js';

type Policy = ConfigResource<PeerAuthenticationSpec>;

function hasSelector(p: Policy): boolean {
  return Object.keys(p.spec?.selector?.matchLabels ?? {}).length > 0;
}

function modeOf(m: MutualTLS | undefined): InboundMtlsMode | undefined {
  const mode = m?.mode;
  return mode === undefined || mode === 'UNSET' ? undefined : mode;
}

const name = (p: Policy) => `PeerAuthentication ${p.namespace}/${p.name}`;

/** The policies that decide this workload's mode: mesh, namespace, workload level (each optional). */
export function peerAuthenticationsFor(
  snap: MeshSnapshot,
  w: Pick<WorkloadIdentity, 'namespace' | 'labels'>,
): { mesh?: Policy; namespace?: Policy; workload?: Policy } {
  const all = snap.peerAuthentications as Policy[];
  const root = snap.mesh.rootNamespace;
  const mesh = all.find((p) => p.namespace === root && !hasSelector(p));
  const namespace =
    w.namespace === root ? undefined : all.find((p) => p.namespace === w.namespace && !hasSelector(p));
  const workload = all.find(
    (p) => p.namespace === w.namespace && hasSelector(p) && selects(p.spec.selector!.matchLabels!, w.labels),
  );
  return {
    ...(mesh ? { mesh } : {}),
    ...(namespace ? { namespace } : {}),
    ...(workload ? { workload } : {}),
  };
}

/**
 * The workload's inbound mTLS; undefined when it is plain PERMISSIVE everywhere (the contract's
 * default), so configs without PeerAuthentication do not change.
 */
export function inboundMtlsFor(
  snap: MeshSnapshot,
  w: Pick<WorkloadIdentity, 'namespace' | 'labels'>,
  warn: Warn,
): InboundMtls | undefined {
  const { mesh, namespace, workload } = peerAuthenticationsFor(snap, w);
  let mode: InboundMtlsMode = 'PERMISSIVE';
  for (const p of [mesh, namespace, workload]) mode = modeOf(p?.spec?.mtls) ?? mode;
  for (const p of [mesh, namespace])
    if (p?.spec?.portLevelMtls && Object.keys(p.spec.portLevelMtls).length)
      warn(name(p), 'portLevelMtls is only honoured on a policy with a workload selector; ignored');
  const portLevel: Record<string, InboundMtlsMode> = {};
  for (const [port, m] of Object.entries(workload?.spec?.portLevelMtls ?? {}).sort(
    ([a], [b]) => Number(a) - Number(b),
  )) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      warn(name(workload!), `portLevelMtls key "${port}" is not a port number; ignored`);
      continue;
    }
    const pm = modeOf(m);
    if (pm !== undefined && pm !== mode) portLevel[String(n)] = pm;
  }
  const hasPorts = Object.keys(portLevel).length > 0;
  if (mode === 'PERMISSIVE' && !hasPorts) return undefined;
  return { mode, ...(hasPorts ? { portLevel } : {}) };
}
