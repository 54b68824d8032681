/** Types shared by several networking.istio.io kinds. */
import { Int, MapOf, Obj, Str, StrMap, Type, UInt, List, Num } from '../schema-kit.js';

export const StringMatch = Obj(
  {
    exact: Str('Exact string match.'),
    prefix: Str('Prefix-based match.'),
    regex: Str('RE2 style regex-based match.'),
  },
  'Exactly one of exact, prefix or regex.',
);

export const PortSelector = Obj({ number: UInt('Valid port number.') });

export const Destination = Obj({
  host: Str('The name of a service from the service registry.'),
  subset: Str('The name of a subset within the service.'),
  port: PortSelector,
});

export const Percent = Obj({ value: Num('Percentage in the range of [0.0, 100.0].') });

export const HeaderOperations = Obj({
  set: StrMap('Overwrite the headers specified by key with the given values.'),
  add: StrMap('Append the given values to the headers specified by keys.'),
  remove: List(Str(), 'Remove the specified headers.'),
});

export const Headers = Obj({ request: HeaderOperations, response: HeaderOperations });

export const WorkloadSelector = Obj({
  matchLabels: StrMap('One or more labels that indicate a specific set of pods/VMs.'),
});

export const StringMatchMap = MapOf(StringMatch);

/** TLS settings used by DestinationRule (ClientTLSSettings) and reused by other kinds. */
export const TlsMode = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;

export const Int32 = Int;
export { Type };
