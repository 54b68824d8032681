/**
 * The front door: 127.0.0.1:<port> forwarded (TCP) to the front service's pod address, i.e. to
 * its sidecar's inbound listener, like a NodePort in front of a pod. Requests from the browser
 * thus enter the mesh through the front workload's sidecar.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class FrontDoor {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private target: { host: string; port: number } | undefined;
  port = 0;

  constructor() {
    this.server = createServer((client) => this.forward(client));
  }

  /** Binds 127.0.0.1:`port` (0 = any free port); rejects with a friendly message when taken. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            err.code === 'EADDRINUSE'
              ? `port ${port} on ${host} is in use: pass --port <n> (0 = any free port)`
              : `cannot listen on ${host}:${port}: ${err.message}`,
          ),
        );
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        this.port = typeof a === 'object' && a ? a.port : port;
        resolve(this.port);
      });
    });
  }

  pointAt(host: string, port: number): void {
    this.target = { host, port };
  }

  private forward(client: Socket): void {
    const t = this.target;
    if (!t) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: t.host, port: t.port });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.setNoDelay(true);
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
  }
}
