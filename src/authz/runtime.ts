/**
 * One object per proxy holding the compiled inbound security of the current config version:
 * the authorization engine, the JWT authenticator, the rate limiter and the path
 * normalization mode. `apply(section)` builds the next version (throws on malformed input, in
 * which case the previous version stays in force); it keeps rate-limit buckets and fetched
 * key sets whose settings did not change.
 */
import type { InboundSecurity, JwtRule, PathNormalization } from '../tables/security.js';
import { AuthzEngine, DryRunStats } from './engine.js';
import { RequestAuthenticator, type RequestAuthenticatorOptions } from './jwt.js';
import { LocalRateLimiter } from './rate-limit.js';

export class InboundSecurityRuntime {
  engine: AuthzEngine = AuthzEngine.compile([]);
  jwt: RequestAuthenticator = new RequestAuthenticator([]);
  readonly rateLimiter: LocalRateLimiter = new LocalRateLimiter(undefined);
  pathNormalization: PathNormalization = 'BASE';
  /** Dry-run verdicts by inbound port (kept across config versions, like Envoy's counters). */
  readonly dryRun = new DryRunStats();
  private jwtKey = '[]';
  private readonly jwtOptions: RequestAuthenticatorOptions;

  constructor(section?: InboundSecurity, jwtOptions: RequestAuthenticatorOptions = {}) {
    this.jwtOptions = jwtOptions;
    if (section) this.apply(section);
  }

  apply(section: InboundSecurity): void {
    const engine = AuthzEngine.compile(section.policies ?? [], {
      ...(section.customAuthz ? { customAuthz: section.customAuthz } : {}),
    });
    const rules: JwtRule[] = section.jwtRules ?? [];
    const key = JSON.stringify(rules);
    let jwt = this.jwt;
    if (key !== this.jwtKey) {
      jwt = new RequestAuthenticator(rules, this.jwtOptions);
      this.jwt.close();
      this.jwtKey = key;
    }
    this.engine = engine;
    this.jwt = jwt;
    this.rateLimiter.update(section.rateLimit);
    this.pathNormalization = section.pathNormalization ?? 'BASE';
  }

  close(): void {
    this.jwt.close();
  }
}
