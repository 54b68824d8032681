/**
 * The CA's error catalogue: stable codes (clients and tests match on them, not on messages)
 * with the HTTP status each maps to. Messages say what was wrong and how to fix it, and never
 * contain the token.
 */
export const CA_ERRORS = {
  /** No `Authorization: Bearer <token>` header. */
  CA_NO_TOKEN: 401,
  /** The bearer value is not a JWT. */
  CA_TOKEN_MALFORMED: 401,
  /** The token's `exp` has passed. */
  CA_TOKEN_EXPIRED: 401,
  /** The token was minted for another audience than the CA's (`istio-ca`). */
  CA_TOKEN_AUDIENCE: 401,
  /** The apiserver did not authenticate the token (TokenReview status). */
  CA_TOKEN_REJECTED: 401,
  /** Authenticated, but not as a service account. */
  CA_NOT_SERVICE_ACCOUNT: 401,
  /** The TokenReview call itself failed (apiserver unreachable): retry later. */
  CA_AUTH_UNAVAILABLE: 503,
  CA_BAD_REQUEST: 400,
  CA_BODY_TOO_LARGE: 413,
  CA_CSR_MALFORMED: 400,
  CA_CSR_SIGNATURE: 400,
  CA_CSR_KEY_UNSUPPORTED: 400,
  CA_TTL_INVALID: 400,
  CA_NOT_FOUND: 404,
  CA_METHOD_NOT_ALLOWED: 405,
  CA_INTERNAL: 500,
} as const;

export type CaErrorCode = keyof typeof CA_ERRORS;

export class CaError extends Error {
  override name = 'CaError';
  readonly status: number;
  constructor(
    readonly code: CaErrorCode,
    message: string,
  ) {
    super(message);
    this.status = CA_ERRORS[code];
  }
}

/** The JSON body of every error response: `{"error": {"code": "...", "message": "..."}}`. */
export function errorBody(err: CaError): { error: { code: CaErrorCode; message: string } } {
  return { error: { code: err.code, message: err.message } };
}
