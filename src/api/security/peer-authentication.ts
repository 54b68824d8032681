/** PeerAuthentication (security.istio.io): the mTLS mode a workload accepts inbound. */
import { Enum, MapOf, Obj, type Static } from '../schema-kit.js';
import { WorkloadSelector } from './common.js';

export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;

const MutualTLS = Obj({
  mode: Enum([...MTLS_MODES], 'Defines the mTLS mode used for peer authentication.'),
});

export const PeerAuthenticationSpec = Obj({
  selector: WorkloadSelector,
  mtls: MutualTLS,
  portLevelMtls: MapOf(
    MutualTLS,
    'Port specific mutual TLS settings, keyed by port number. Only allowed with a workload selector.',
  ),
});

export type PeerAuthenticationSpec = Static<typeof PeerAuthenticationSpec>;
export type MutualTLS = Static<typeof MutualTLS>;
