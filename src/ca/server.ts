/**
 * The CA's HTTPS endpoint (port 15012 by default): `POST /v1/certificates`. The server owns the
 * cross-cutting parts (TLS with a serving certificate from the mesh CA, renewed in place; body
 * limit; JSON decoding; CaError -> status + JSON error); the request handler is exported on its
 * own so it can later share a listener with config distribution. See README.md for the API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'winston';
import { createLogger } from '../util/log.js';
import type { MeshCa } from './authority.js';
import { CaError, errorBody } from './errors.js';
import type { TokenAuthenticator } from './token-review.js';

export const CERTIFICATES_PATH = '/v1/certificates';
/** A CSR is ~0.5-1.5 KB; anything far larger is not one. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
export const DEFAULT_SERVING_CERT_TTL_SECONDS = 7 * 24 * 3600;

export interface CertificateRequestBody {
  csr: string;
  validitySeconds?: number;
}

export interface CertificateResponseBody {
  certChain: string[];
  rootCert: string;
}

export interface HandlerOptions {
  ca: MeshCa;
  authenticator: TokenAuthenticator;
  maxBodyBytes?: number;
  log?: Logger;
}

export interface CaStats {
  issued: number;
  rejected: number;
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    'cache-control': 'no-store',
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(json);
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

function bearerToken(req: IncomingMessage): string {
  const header = req.headers.authorization;
  const m = header ? BEARER.exec(header) : null;
  if (!m) throw new CaError('CA_NO_TOKEN', 'missing "Authorization: Bearer <service-account token>" header');
  return m[1]!;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume(); // discard what arrives; the answer closes the connection
      reject(
        new CaError('CA_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the ${limit}-byte limit`),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new CaError('CA_BODY_TOO_LARGE', `request body exceeds the ${limit}-byte limit`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function decodeRequest(body: Buffer): CertificateRequestBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new CaError('CA_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CaError(
      'CA_BAD_REQUEST',
      'request body must be a JSON object {"csr": "<PEM>", "validitySeconds"?: n}',
    );
  const { csr, validitySeconds } = parsed as Record<string, unknown>;
  if (typeof csr !== 'string' || csr === '')
    throw new CaError('CA_BAD_REQUEST', 'field "csr" must be a PEM "CERTIFICATE REQUEST" string');
  return { csr, ...(validitySeconds !== undefined ? { validitySeconds: validitySeconds as number } : {}) };
}

/** A node request listener serving the CA API; usable on any HTTPS server. */
export function createCertificateHandler(opts: HandlerOptions): {
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  stats: CaStats;
} {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = opts.log ?? createLogger('ca');
  const stats: CaStats = { issued: 0, rejected: 0 };

  const issue = async (req: IncomingMessage): Promise<CertificateResponseBody> => {
    const token = bearerToken(req);
    const body = await readBody(req, limit);
    const sa = await opts.authenticator.authenticate(token);
    const request = decodeRequest(body);
    const signed = opts.ca.signWorkload(request.csr, sa, request.validitySeconds);
    log.debug('issued workload certificate', {
      spiffeId: signed.spiffeId,
      notAfter: signed.notAfter.toISOString(),
    });
    return { certChain: signed.certChain, rootCert: signed.rootCert };
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz' || path === '/ready') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path !== CERTIFICATES_PATH) {
      send(
        res,
        404,
        errorBody(new CaError('CA_NOT_FOUND', `not found: this server serves POST ${CERTIFICATES_PATH}`)),
      );
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      send(res, 405, errorBody(new CaError('CA_METHOD_NOT_ALLOWED', `use POST ${CERTIFICATES_PATH}`)));
      return;
    }
    issue(req).then(
      (out) => {
        stats.issued++;
        send(res, 200, out);
      },
      (err: unknown) => {
        stats.rejected++;
        const caErr =
          err instanceof CaError
            ? err
            : new CaError('CA_INTERNAL', 'internal error while signing; see the CA log');
        if (caErr.status >= 500)
          log.error('certificate request failed', {
            code: caErr.code,
            error: err instanceof Error ? (err.stack ?? err.message) : String(err),
          });
        else
          log.info('certificate request refused', {
            code: caErr.code,
            reason: caErr.message,
            from: req.socket.remoteAddress,
          });
        send(res, caErr.status, errorBody(caErr), caErr.code === 'CA_BODY_TOO_LARGE');
      },
    );
  };
  return { handle, stats };
}

export interface CaServerOptions extends HandlerOptions {
  port: number;
  host?: string;
  /** DNS names / IPs the serving certificate covers (the controller Service's names). */
  servingNames: string[];
  servingCertTtlSeconds?: number;
}

export interface CaServer {
  server: Server;
  port: number;
  stats: CaStats;
  close(): Promise<void>;
}

/** Starts the HTTPS CA endpoint; the serving certificate is renewed at half its lifetime. */
export async function startCaServer(opts: CaServerOptions): Promise<CaServer> {
  const ttl = opts.servingCertTtlSeconds ?? DEFAULT_SERVING_CERT_TTL_SECONDS;
  const serving = () => {
    const s = opts.ca.issueServingCert(opts.servingNames, ttl);
    return { cert: s.certChainPem, key: s.keyPem, minVersion: 'TLSv1.2' as const };
  };
  const { handle, stats } = createCertificateHandler(opts);
  const server = createServer(serving(), handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 30_000;
  // Timers above 2^31 ms fire at once, so long lifetimes renew daily instead of at half-life.
  const renew = setInterval(() => server.setSecureContext(serving()), Math.min((ttl * 1000) / 2, 86_400_000));
  renew.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(renew);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
