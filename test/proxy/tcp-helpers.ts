/**
 * Loopback helpers for the TCP, sidecar and WebSocket tests: echo servers, a raw TCP client
 * that sends bytes and collects the reply, and Prometheus sample lookup.
 */
import net, { type AddressInfo } from 'node:net';

export interface EchoServer {
  port: number;
  server: net.Server;
  /** Remote addresses of accepted connections, in order. */
  peers: string[];
  /** Bytes received per connection, in order. */
  received: Buffer[];
  close(): Promise<void>;
}

/** A TCP server that echoes everything (prefixed by `greeting` when given) and half-closes after the client. */
export async function startEcho(greeting?: string, host = '127.0.0.1'): Promise<EchoServer> {
  const peers: string[] = [];
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    peers.push(s.remoteAddress ?? '');
    const i = received.length;
    received.push(Buffer.alloc(0));
    if (greeting) s.write(greeting);
    s.on('data', (d: Buffer) => {
      received[i] = Buffer.concat([received[i]!, d]);
      s.write(d);
    });
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    peers,
    received,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * Connects, writes `data`, half-closes, and resolves with everything read until the server
 * closes (or the error code / 'timeout').
 */
export function exchange(
  port: number,
  data: Buffer | string,
  opts: { host?: string; halfClose?: boolean; timeoutMs?: number; waitFirst?: boolean } = {},
): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: opts.host ?? '127.0.0.1', port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), error: 'timeout' });
    }, opts.timeoutMs ?? 5000);
    const send = () => {
      s.write(data);
      if (opts.halfClose !== false) s.end();
    };
    s.on('connect', () => {
      if (!opts.waitFirst) send();
    });
    s.on('data', (d: Buffer) => {
      if (opts.waitFirst && chunks.length === 0) {
        chunks.push(d);
        send();
        return;
      }
      chunks.push(d);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks) });
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), error: e.code ?? e.message });
    });
  });
}

/** Sum of a metric's samples whose labels include every `want` pair. */
export function sample(text: string, metric: string, want: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const labels = line.slice(metric.length + 1, line.lastIndexOf('}'));
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

/** Polls `check` until it returns true (or throws after `ms`). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
