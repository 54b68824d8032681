/**
 * The admission server: one HTTPS endpoint for every webhook (`/validate`, `/inject`), owning
 * the cross-cutting parts — TLS with live certificate reload, body size limit, decoding, and
 * turning bad input into a clear 400 instead of a crash. Handlers are plain functions.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  type AdmissionDecision,
  type AdmissionRequest,
  BadReviewError,
  decodeReview,
  encodeReview,
} from './admission.js';

export type AdmissionHandler = (req: AdmissionRequest) => AdmissionDecision | Promise<AdmissionDecision>;

export interface AdmissionServerOptions {
  cert: string;
  key: string;
  /** Path -> handler, e.g. { '/validate': validateAdmission }. */
  handlers: Record<string, AdmissionHandler>;
  /** Largest accepted body; Kubernetes objects are at most ~1.5 MiB, a review carries two. */
  maxBodyBytes?: number;
  onError?: (err: unknown) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;

export interface AdmissionServer {
  server: Server;
  port: number;
  /** Swaps the serving certificate for new connections (rotation without restart). */
  setCertificate(cert: string, key: string): void;
  close(): Promise<void>;
}

function badRequest(res: Response, message: string): void {
  res.status(400).type('text/plain').send(`${message}\n`);
}

export function createAdmissionApp(opts: AdmissionServerOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  app.get(['/healthz', '/ready'], (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.use(express.json({ limit, type: () => true, strict: true }));
  for (const [path, handler] of Object.entries(opts.handlers)) {
    app.post(path, async (req: Request, res: Response) => {
      let decoded: ReturnType<typeof decodeReview>;
      try {
        decoded = decodeReview(req.body);
      } catch (err) {
        if (err instanceof BadReviewError) return badRequest(res, `invalid AdmissionReview: ${err.message}`);
        throw err;
      }
      let decision: AdmissionDecision;
      try {
        decision = await handler(decoded.request);
      } catch (err) {
        // A handler bug must not turn into an opaque webhook failure: deny with the reason.
        opts.onError?.(err);
        decision = {
          allowed: false,
          message: `internal error in ${path}: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
      res.json(encodeReview(decoded.apiVersion, decoded.request.uid, decision));
    });
  }
  app.use((_req: Request, res: Response) => {
    res
      .status(404)
      .type('text/plain')
      .send('not found: this server serves POST /validate and POST /inject\n');
  });
  // Express recognises error middleware by its four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large')
      return badRequest(res, `request body is larger than the ${limit}-byte limit`);
    if (e.type === 'entity.parse.failed')
      return badRequest(res, `request body is not valid JSON: ${e.message}`);
    if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported')
      return badRequest(res, e.message ?? 'unsupported encoding');
    if (e.status && e.status >= 400 && e.status < 500) return badRequest(res, e.message ?? 'bad request');
    opts.onError?.(err);
    res.status(500).type('text/plain').send('internal error\n');
  });
  return app;
}

export async function startAdmissionServer(
  opts: AdmissionServerOptions & { port: number; host?: string },
): Promise<AdmissionServer> {
  const app = createAdmissionApp(opts);
  const server = createServer({ cert: opts.cert, key: opts.key, minVersion: 'TLSv1.2' }, app);
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
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
    setCertificate(cert, key) {
      server.setSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
