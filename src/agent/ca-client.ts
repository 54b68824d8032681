/**
 * The agent's side of `POST /v1/certificates`: one HTTPS request, the CA's serving certificate
 * checked against the mesh root (the `istio-ca-root-cert` ConfigMap mounted in the pod).
 */
import { request } from 'node:https';
import { isIP } from 'node:net';

export const CERTIFICATES_PATH = '/v1/certificates';

export interface CaClientOptions {
  /** `host:port`, as in the injected CA_ADDR (isthmus-controller.istio-system.svc:15012). */
  caAddress: string;
  /** Root(s) the CA's serving certificate must chain to. */
  caRootPem: string;
  /** Name to verify the serving certificate against (default: the host of caAddress). */
  serverName?: string;
  timeoutMs: number;
}

export interface IssuedCertificates {
  certChain: string[];
  rootCert: string;
}

/** A refusal or failure; `status`/`code` are set when the CA answered with an error body. */
export class CaRequestError extends Error {
  override name = 'CaRequestError';
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

function decode(status: number, text: string): IssuedCertificates {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CaRequestError(`CA answered HTTP ${status} with a non-JSON body`, status);
  }
  const b = body as {
    certChain?: unknown;
    rootCert?: unknown;
    error?: { code?: unknown; message?: unknown };
  };
  if (status !== 200) {
    const code = typeof b.error?.code === 'string' ? b.error.code : undefined;
    const message = typeof b.error?.message === 'string' ? b.error.message : text.slice(0, 200);
    throw new CaRequestError(
      `CA refused (HTTP ${status}${code ? ` ${code}` : ''}): ${message}`,
      status,
      code,
    );
  }
  if (
    !Array.isArray(b.certChain) ||
    b.certChain.length === 0 ||
    !b.certChain.every((c) => typeof c === 'string') ||
    typeof b.rootCert !== 'string'
  )
    throw new CaRequestError('CA response lacks certChain[] or rootCert', status);
  return { certChain: b.certChain as string[], rootCert: b.rootCert };
}

/** Sends the CSR with the token; resolves with the chain or rejects with CaRequestError. */
export function requestCertificate(
  opts: CaClientOptions,
  token: string,
  csrPem: string,
  validitySeconds?: number,
): Promise<IssuedCertificates> {
  const url = new URL(`https://${opts.caAddress}${CERTIFICATES_PATH}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const serverName = opts.serverName ?? host;
  const payload = JSON.stringify({ csr: csrPem, ...(validitySeconds ? { validitySeconds } : {}) });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: url.port || 443,
        path: CERTIFICATES_PATH,
        method: 'POST',
        ca: opts.caRootPem,
        // The serving certificate is checked against servername when set, else the host;
        // SNI must not carry an IP address.
        ...(isIP(serverName) ? {} : { servername: serverName }),
        minVersion: 'TLSv1.2',
        agent: false,
        timeout: opts.timeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new CaRequestError('CA response is too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          try {
            resolve(decode(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new CaRequestError(`no answer from the CA within ${opts.timeoutMs} ms`)),
    );
    req.on('error', (err) =>
      reject(
        err instanceof CaRequestError
          ? err
          : new CaRequestError(`cannot reach the CA at ${opts.caAddress}: ${err.message}`),
      ),
    );
    req.end(payload);
  });
}
