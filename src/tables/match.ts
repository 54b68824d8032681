/**
 * Match specs of the compiled config. They mirror Istio's HTTPMatchRequest closely, but
 * one route carries ONE match: the compiler expands a VirtualService rule with N matches
 * into N routes (as Istio does for Envoy), so "replace the matched prefix" is unambiguous.
 * `sourceLabels`, `sourceNamespace` and `gateways` are absent on purpose: the compiler
 * evaluates them against the proxy's own workload and drops routes that cannot match.
 */
import { Bool, List, NonEmpty, Obj, Opt, PortNum, type Static, Str } from './kit.js';

/** Exactly one of the fields is set (checked semantically, with a path-named error). */
export const StringMatchSchema = Obj(
  {
    exact: Opt(Str()),
    prefix: Opt(Str()),
    suffix: Opt(Str()),
    regex: Opt(Str('RE2 syntax, fully anchored (must match the whole value), max 1024 chars.')),
  },
  'One string matcher: exact, prefix, suffix or regex.',
);
export type StringMatch = Static<typeof StringMatchSchema>;

export const HeaderMatchSchema = Obj({
  name: NonEmpty('Header name; matched case-insensitively.'),
  match: Opt(StringMatchSchema),
});
export type HeaderMatch = Static<typeof HeaderMatchSchema>;

export const QueryParamMatchSchema = Obj({
  name: NonEmpty('Query parameter name (case-sensitive).'),
  match: Opt(StringMatchSchema),
});
export type QueryParamMatch = Static<typeof QueryParamMatchSchema>;

export const RouteMatchSchema = Obj(
  {
    path: Opt(StringMatchSchema),
    ignoreCase: Opt(Bool('Istio ignoreUriCase: exact/prefix path matching ignores case.')),
    headers: Opt(List(HeaderMatchSchema, 'All must match; no `match` means "header present".')),
    withoutHeaders: Opt(List(HeaderMatchSchema, 'Each must NOT match; no `match` means "header absent".')),
    queryParams: Opt(List(QueryParamMatchSchema)),
    method: Opt(StringMatchSchema),
    authority: Opt(StringMatchSchema),
    port: Opt(PortNum('Destination port of the request (listener or authority port).')),
  },
  'All fields must match (AND). Absent = match everything.',
);
export type RouteMatch = Static<typeof RouteMatchSchema>;
