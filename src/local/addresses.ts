/**
 * Loopback addresses and ports for local mode. Every "pod" gets its own 127.0.0.x (Linux routes
 * all of 127.0.0.0/8 to lo), so all sidecars use the Istio ports (15000, 15001, 15090) and every
 * instance of a service listens on the same service port, as in Kubernetes.
 */
import { createServer, type Server } from 'node:net';

/** True when `host:port` can be bound right now (the probe socket is closed again). */
export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A port the OS reports free on `host` (bound to 0, read, closed). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0, exclusive: true }, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** `port` when it can be bound on `host`, else 0 (the OS picks one at bind time). */
export async function preferredPort(host: string, port: number): Promise<number> {
  return (await canBind(host, port)) ? port : 0;
}

function ipOf(n: number): string {
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

const CANARY = '127.254.254.254';

/** Binds `host:port` and keeps it bound (a reservation), or null when taken. */
function reserve(host: string, port: number): Promise<Server | null> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRNOTAVAIL')
        reject(
          new Error(
            `${host} is not configured on this machine: local mode gives every pod its own loopback ` +
              'address (Linux has all of 127.0.0.0/8; on macOS add aliases: ' +
              '`for i in $(seq 2 20); do sudo ifconfig lo0 alias 127.0.0.$i up; done`)',
          ),
        );
      else resolve(null);
    });
    s.listen({ host, port, exclusive: true }, () => resolve(s));
  });
}

/**
 * Hands out 127.0.0.2, 127.0.0.3, ... skipping addresses where one of the required ports is
 * taken (another `isthmus up`, or a server on 0.0.0.0, which blocks every address). The ports
 * stay reserved until `release()`, so two `isthmus up` starting together do not pick the same
 * address: release each right before its sidecar binds.
 */
export class LoopbackAllocator {
  private next: number;
  private readonly last: number;
  private readonly held = new Map<string, Server[]>();

  constructor(first = 2, count = 1000) {
    this.next = first;
    this.last = first + count - 1;
  }

  async allocate(requiredPorts: readonly number[]): Promise<string> {
    let tried = 0;
    while (this.next <= this.last) {
      const ip = ipOf(this.next++);
      if ((this.next & 255) === 255) this.next += 2; // skip x.x.x.255 and x.x.x.0
      if (await this.reserveAll(ip, requiredPorts)) return ip;
      // Busy even on a far-away address: bound on 0.0.0.0, no loopback address will do.
      if (++tried === 4) {
        const busy: number[] = [];
        for (const port of requiredPorts) if (!(await canBind(CANARY, port))) busy.push(port);
        if (busy.length)
          throw new Error(
            `port ${busy.join(', ')} is in use on every loopback address (is something listening on 0.0.0.0:${busy[0]}?)`,
          );
      }
    }
    throw new Error(`no free loopback address in 127.0.0.0/8 for ports ${requiredPorts.join(', ')}`);
  }

  private async reserveAll(ip: string, ports: readonly number[]): Promise<boolean> {
    const got: Server[] = [];
    try {
      // Port 0 when none is required: still proves the address is usable here.
      for (const port of ports.length ? ports : [0]) {
        const s = await reserve(ip, port);
        if (!s) {
          await Promise.all(got.map(close));
          return false;
        }
        got.push(s);
      }
    } catch (err) {
      await Promise.all(got.map(close));
      throw err;
    }
    this.held.set(ip, got);
    return true;
  }

  /** Frees the ports reserved on `ip` (its sidecar binds them next), or all of them. */
  async release(ip?: string): Promise<void> {
    for (const [key, servers] of [...this.held]) {
      if (ip !== undefined && key !== ip) continue;
      this.held.delete(key);
      await Promise.all(servers.map(close));
    }
  }
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}
