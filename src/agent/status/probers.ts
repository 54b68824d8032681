/**
 * The app probes the agent runs for kubelet: ISTIO_KUBE_APP_PROBERS (Istio's format), a JSON
 * object from the rewritten path to the original probe action:
 *   {"/app-health/web/readyz": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP",
 *    "httpHeaders": [{"name": "x", "value": "y"}]}, "timeoutSeconds": 1},
 *    "/app-health/db/livez": {"tcpSocket": {"port": 5432}}}
 */

export interface HttpGetProbe {
  path?: string;
  port: number;
  host?: string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: Array<{ name: string; value: string }>;
}

export interface TcpSocketProbe {
  port: number;
  host?: string;
}

export interface GrpcProbe {
  port: number;
  service?: string;
}

export interface AppProber {
  httpGet?: HttpGetProbe;
  tcpSocket?: TcpSocketProbe;
  grpc?: GrpcProbe;
  /** Kubelet's default is 1 s. */
  timeoutSeconds?: number;
}

export const APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function portOf(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/**
 * Parses the env value. Entries that cannot be run (a named port, no action) are reported
 * in `errors` and left out, so one bad probe does not take the others down.
 */
export function parseAppProbers(raw: string | undefined): {
  probers: Map<string, AppProber>;
  errors: string[];
} {
  const probers = new Map<string, AppProber>();
  const errors: string[] = [];
  if (!raw) return { probers, errors };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return { probers, errors: [`${APP_PROBERS_ENV} is not JSON: ${(err as Error).message}`] };
  }
  if (!isRecord(parsed)) return { probers, errors: [`${APP_PROBERS_ENV} must be a JSON object`] };
  for (const [path, v] of Object.entries(parsed)) {
    if (!isRecord(v)) {
      errors.push(`${path}: not an object`);
      continue;
    }
    const p: AppProber = {};
    if (typeof v.timeoutSeconds === 'number' && v.timeoutSeconds > 0) p.timeoutSeconds = v.timeoutSeconds;
    if (isRecord(v.httpGet)) {
      const port = portOf(v.httpGet.port);
      if (port === undefined) {
        errors.push(`${path}: httpGet.port ${JSON.stringify(v.httpGet.port)} is not a port number`);
        continue;
      }
      const h: HttpGetProbe = { port };
      if (typeof v.httpGet.path === 'string') h.path = v.httpGet.path;
      if (typeof v.httpGet.host === 'string' && v.httpGet.host) h.host = v.httpGet.host;
      if (v.httpGet.scheme === 'HTTPS' || v.httpGet.scheme === 'HTTP') h.scheme = v.httpGet.scheme;
      if (Array.isArray(v.httpGet.httpHeaders)) {
        h.httpHeaders = v.httpGet.httpHeaders
          .filter(isRecord)
          .filter((x) => typeof x.name === 'string' && typeof x.value === 'string')
          .map((x) => ({ name: x.name as string, value: x.value as string }));
      }
      p.httpGet = h;
    } else if (isRecord(v.tcpSocket)) {
      const port = portOf(v.tcpSocket.port);
      if (port === undefined) {
        errors.push(`${path}: tcpSocket.port ${JSON.stringify(v.tcpSocket.port)} is not a port number`);
        continue;
      }
      p.tcpSocket = {
        port,
        ...(typeof v.tcpSocket.host === 'string' && v.tcpSocket.host ? { host: v.tcpSocket.host } : {}),
      };
    } else if (isRecord(v.grpc)) {
      const port = portOf(v.grpc.port);
      if (port === undefined) {
        errors.push(`${path}: grpc.port is not a port number`);
        continue;
      }
      p.grpc = { port, ...(typeof v.grpc.service === 'string' ? { service: v.grpc.service } : {}) };
    } else {
      errors.push(`${path}: no httpGet, tcpSocket or grpc action`);
      continue;
    }
    probers.set(path, p);
  }
  return { probers, errors };
}
