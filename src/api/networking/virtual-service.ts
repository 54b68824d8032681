/** VirtualService (networking.istio.io): traffic routing rules for hosts. */

import { Bool, Duration, Enum, Int, List, Obj, type Static, Str, StrMap, UInt } from '../schema-kit.js';
import { Destination, Headers, Percent, PortSelector, StringMatch, StringMatchMap } from './common.js';

const HTTPMatchRequest = Obj({
  name: Str('The name assigned to a match.'),
  uri: StringMatch,
  scheme: StringMatch,
  method: StringMatch,
  authority: StringMatch,
  headers: StringMatchMap,
  port: UInt('Specifies the ports on the host that is being addressed.'),
  sourceLabels: StrMap('One or more labels that constrain the applicability of a rule to source workloads.'),
  gateways: List(Str(), 'Names of gateways where the rule should be applied.'),
  queryParams: StringMatchMap,
  ignoreUriCase: Bool('Flag to specify whether the URI matching should be case-insensitive.'),
  withoutHeaders: StringMatchMap,
  sourceNamespace: Str(
    'Source namespace constraining the applicability of a rule to workloads in that namespace.',
  ),
  statPrefix: Str('The human readable prefix to use when emitting statistics for this route.'),
});

const HTTPRouteDestination = Obj({
  destination: Destination,
  weight: Int('Weight specifies the relative proportion of traffic to be forwarded to the destination.'),
  headers: Headers,
});

const RouteDestination = Obj({ destination: Destination, weight: Int() });

const HTTPRedirect = Obj({
  uri: Str(),
  authority: Str(),
  port: UInt(),
  derivePort: Enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']),
  scheme: Str(),
  redirectCode: UInt(),
});

const HTTPDirectResponse = Obj({
  status: UInt('Specifies the HTTP response status to be returned.'),
  body: Obj({ string: Str(), bytes: Str('Base64-encoded response body.') }),
});

const HTTPRewrite = Obj({
  uri: Str(),
  authority: Str(),
  uriRegexRewrite: Obj({ match: Str('RE2 style regex-based match.'), rewrite: Str() }),
});

const HTTPRetry = Obj({
  attempts: Int('Number of retries to be allowed for a given request.'),
  perTryTimeout: Duration(
    'Timeout per attempt for a given request, including the initial call and any retries.',
  ),
  retryOn: Str('Specifies the conditions under which retry takes place.'),
  retryRemoteLocalities: Bool(),
  backoff: Duration('Base interval between retries.'),
});

const HTTPFaultInjection = Obj({
  delay: Obj({
    fixedDelay: Duration('Add a fixed delay before forwarding the request.'),
    exponentialDelay: Duration(),
    percentage: Percent,
    percent: Int('Percentage of requests on which the delay will be injected (deprecated).'),
  }),
  abort: Obj({
    httpStatus: Int('HTTP status code to use to abort the Http request.'),
    grpcStatus: Str('GRPC status code to use to abort the request.'),
    http2Error: Str(),
    percentage: Percent,
  }),
});

const HTTPMirrorPolicy = Obj({ destination: Destination, percentage: Percent });

const CorsPolicy = Obj({
  allowOrigin: List(Str()),
  allowOrigins: List(StringMatch),
  allowMethods: List(Str()),
  allowHeaders: List(Str()),
  exposeHeaders: List(Str()),
  maxAge: Duration(),
  allowCredentials: Bool(),
  unmatchedPreflights: Enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']),
});

const HTTPRoute = Obj({
  name: Str('The name assigned to the route for debugging purposes.'),
  match: List(HTTPMatchRequest),
  route: List(HTTPRouteDestination),
  redirect: HTTPRedirect,
  directResponse: HTTPDirectResponse,
  delegate: Obj({ name: Str(), namespace: Str() }),
  rewrite: HTTPRewrite,
  timeout: Duration('Timeout for HTTP requests, default is disabled.'),
  retries: HTTPRetry,
  fault: HTTPFaultInjection,
  mirror: Destination,
  mirrors: List(HTTPMirrorPolicy),
  mirrorPercent: UInt('Percentage of the traffic to be mirrored (deprecated).'),
  mirrorPercentage: Percent,
  corsPolicy: CorsPolicy,
  headers: Headers,
});

const L4Match = {
  destinationSubnets: List(Str(), 'IPv4 or IPv6 ip addresses of destination with optional subnet.'),
  port: UInt(),
  sourceLabels: StrMap(),
  gateways: List(Str()),
  sourceNamespace: Str(),
};

const TLSRoute = Obj({
  match: List(Obj({ sniHosts: List(Str(), 'SNI (server name indicator) to match on.'), ...L4Match })),
  route: List(RouteDestination),
});

const TCPRoute = Obj({
  match: List(Obj({ ...L4Match, sourceSubnet: Str() })),
  route: List(RouteDestination),
});

export const VirtualServiceSpec = Obj({
  hosts: List(Str(), 'The destination hosts to which traffic is being sent.'),
  gateways: List(Str(), 'The names of gateways and sidecars that should apply these routes.'),
  http: List(HTTPRoute),
  tls: List(TLSRoute),
  tcp: List(TCPRoute),
  exportTo: List(Str(), 'A list of namespaces to which this virtual service is exported.'),
});

export type VirtualServiceSpec = Static<typeof VirtualServiceSpec>;
export type HTTPRoute = Static<typeof HTTPRoute>;
export type HTTPMatchRequest = Static<typeof HTTPMatchRequest>;
export type StringMatchT = Static<typeof StringMatch>;
export { PortSelector };
