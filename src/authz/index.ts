/**
 * Inbound security of the sidecar: AuthorizationPolicy engine, RequestAuthentication (JWT),
 * local rate limiting, path normalization. See README.md for what the proxy calls and when.
 */
export { AuthzAttributes, type JwtClaims } from './attributes.js';
export { AuthzCompileError } from './compile.js';
export {
  AuthzDecision,
  AuthzEngine,
  type AuthzEngineOptions,
  DryRunStats,
  RBAC_DENIED_BODY,
  REASON_NO_ALLOW_POLICY,
  REASON_NO_POLICIES,
  REASON_NOT_ALLOWED,
} from './engine.js';
export { Cidr, parseIpInto } from './ip.js';
export { fetchText, InlineJwks, JwksFetchError, RemoteJwks, type RemoteJwksOptions } from './jwks.js';
export {
  applyJwtHeaders,
  JWT_REASONS,
  type JwtOutcome,
  RequestAuthenticator,
  type RequestAuthenticatorOptions,
  wwwAuthenticate,
} from './jwt.js';
export { normalizeRequestTarget, PathTemplate, pathOf } from './path.js';
export {
  LocalRateLimiter,
  RATE_LIMITED_BODY,
  RATE_LIMITED_FLAG,
  RATE_LIMITED_STATUS,
  RateLimitDecision,
  rateLimitHeaders,
  TokenBucket,
} from './rate-limit.js';
export {
  parseRateLimit,
  RATE_LIMIT_ANNOTATION,
  ROUTE_RATE_LIMIT_ANNOTATION,
  rateLimitFromAnnotations,
} from './rate-limit-config.js';
export { InboundSecurityRuntime } from './runtime.js';
