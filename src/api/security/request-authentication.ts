/** RequestAuthentication (security.istio.io): which JWTs a workload validates. */
import { Bool, Duration, List, Obj, type Static, Str } from '../schema-kit.js';
import { PolicyTargetReference, PolicyTargetReferences, WorkloadSelector } from './common.js';

const JWTHeader = Obj({
  name: Str('The HTTP header name.'),
  prefix: Str('The prefix that should be stripped before decoding the token, e.g. "Bearer ".'),
});

const ClaimToHeader = Obj({
  header: Str('The name of the header to be created. The header will be overridden if it already exists.'),
  claim: Str(
    'The name of the claim to be copied from; only string, boolean and number claims are supported.',
  ),
});

const JWTRule = Obj({
  issuer: Str('Identifies the issuer that issued the JWT, usually a URL or an email address.'),
  audiences: List(Str(), 'JWT audiences that are allowed; the service name is accepted when empty.'),
  jwksUri: Str("URL of the provider's public key set to validate the JWT signature."),
  jwks: Str('JSON Web Key Set of public keys to validate the JWT signature; jwksUri is ignored when set.'),
  fromHeaders: List(JWTHeader, 'Headers the JWT is read from (default: Authorization: Bearer).'),
  fromParams: List(Str(), 'Query parameters the JWT is read from (default: access_token).'),
  fromCookies: List(Str(), 'Cookies the JWT is read from.'),
  outputPayloadToHeader: Str(
    'Header to which the base64-encoded payload of a successfully verified JWT is written.',
  ),
  forwardOriginalToken: Bool('Whether the original token is forwarded to the upstream.'),
  outputClaimToHeaders: List(ClaimToHeader, 'Copies JWT claims to HTTP request headers.'),
  timeout: Duration('How long to wait for the JWKS to be fetched (default 5s).'),
});

export const RequestAuthenticationSpec = Obj({
  selector: WorkloadSelector,
  targetRef: PolicyTargetReference,
  targetRefs: PolicyTargetReferences,
  jwtRules: List(JWTRule, 'The JWTs that can be validated at the selected workloads.'),
});

export type RequestAuthenticationSpec = Static<typeof RequestAuthenticationSpec>;
export type JWTRule = Static<typeof JWTRule>;
