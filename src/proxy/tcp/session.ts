/**
 * One proxied TCP connection: connect upstream (bounded by the connect timeout), then pipe
 * both ways with backpressure and half-close, until both sides are done or one fails.
 * Sockets must be created with `allowHalfOpen: true` so a client's FIN reaches the upstream
 * without cutting the reply direction. Per-connection closures are fine (once per connection).
 */
import net, { type Socket } from 'node:net';
import { Flag } from '../flags.js';
import type { UpstreamTls } from '../tls/upstream.js';
import type { LiveConnection, TcpSeries } from './metrics.js';

export interface Destination {
  host: string;
  port: number;
  /** Source address to bind (inbound passthrough uses 127.0.0.6). */
  localAddress?: string;
  /** Originate TLS (mTLS to a meshed endpoint, DestinationRule TLS); absent = plaintext. */
  tls?: UpstreamTls;
}

export interface SessionHooks {
  /** Series the connection counts in, given its final response flags (0 = fine). */
  series(flags: number): TcpSeries;
  /** Called once when the session is over (connect failed, or both sides closed). */
  done(session: TcpSession): void;
  /** Debug logging of connect errors; null = quiet. */
  debug: ((msg: string) => void) | null;
}

export interface SessionTimeouts {
  connectTimeoutMs: number;
  /** Close a connection without traffic in either direction this long; 0 = never. */
  idleTimeoutMs: number;
}

export class TcpSession implements LiveConnection {
  readonly down: Socket;
  up: Socket | null = null;
  private series: TcpSeries | null = null;
  private readonly hooks: SessionHooks;
  private finished = false;
  /** The upstream connection could not be established (refused, unreachable, timeout). */
  connectFailed = false;
  private connectTimer: NodeJS.Timeout | null = null;
  /** Bytes read while sniffing that could not be pushed back (the client already half-closed). */
  private pending: Buffer | null = null;

  constructor(down: Socket, hooks: SessionHooks) {
    this.down = down;
    this.hooks = hooks;
    down.on('error', () => {});
  }

  /** Connects to `dst` and starts piping; the downstream is paused until then. */
  connect(dst: Destination, t: SessionTimeouts, pending: Buffer | null = null): void {
    const down = this.down;
    this.pending = pending;
    down.pause();
    const up =
      dst.tls?.connect(dst.host, dst.port, 'tcp') ??
      net.connect({
        host: dst.host,
        port: dst.port,
        allowHalfOpen: true,
        noDelay: true,
        ...(dst.localAddress !== undefined ? { localAddress: dst.localAddress } : {}),
      });
    this.up = up;
    up.on('error', (err: Error) => this.upError(err));
    // TLS: established once the peer is verified, so a refused identity counts as UF.
    up.once(dst.tls ? 'secureConnect' : 'connect', () => this.established(t.idleTimeoutMs));
    if (t.connectTimeoutMs > 0) this.connectTimer = setTimeout(onConnectTimeout, t.connectTimeoutMs, this);
    // The client gave up while we were connecting.
    down.once('close', () => {
      if (this.series === null) this.fail(Flag.DC, null);
    });
  }

  /** Fails the connection before it was established: counts it with `flags`, closes both. */
  fail(flags: number, reason: string | null): void {
    if (this.finished) return;
    this.finished = true;
    this.connectFailed = (flags & Flag.UF) !== 0;
    this.clearConnectTimer();
    if (reason !== null) this.hooks.debug?.(reason);
    this.hooks.series(flags).failed(this.down);
    this.up?.destroy();
    this.down.destroy();
    this.hooks.done(this);
  }

  /** Ends the session now (drain deadline, shutdown). */
  destroy(): void {
    this.up?.destroy();
    this.down.destroy();
  }

  connectTimedOut(): void {
    this.connectTimer = null;
    if (this.series === null) this.fail(Flag.UF, 'upstream connect timeout');
  }

  private upError(err: Error): void {
    if (this.series === null) {
      this.fail(Flag.UF, `upstream connect failed: ${err.message}`);
      return;
    }
    this.down.destroy();
  }

  private established(idleTimeoutMs: number): void {
    if (this.finished) return;
    this.clearConnectTimer();
    const up = this.up!;
    const down = this.down;
    this.series = this.hooks.series(0);
    this.series.open(this);
    let closes = 0;
    const closed = () => {
      if (++closes === 2) this.end();
    };
    // A reset on one side resets the other; a clean close waits for the other to flush.
    up.on('close', (hadError: boolean) => {
      if (hadError) down.destroy();
      else if (!down.destroyed) down.end();
      closed();
    });
    down.on('close', (hadError: boolean) => {
      if (hadError) up.destroy();
      else if (!up.destroyed) up.end();
      closed();
    });
    if (idleTimeoutMs > 0) {
      down.setTimeout(idleTimeoutMs);
      up.setTimeout(idleTimeoutMs);
      const idle = () => this.destroy();
      down.on('timeout', idle);
      up.on('timeout', idle);
    }
    if (this.pending !== null) up.write(this.pending);
    this.pending = null;
    if (down.readableEnded) up.end();
    else {
      down.pipe(up);
      down.resume();
    }
    up.pipe(down);
  }

  private end(): void {
    if (this.finished) return;
    this.finished = true;
    this.series?.close(this);
    this.hooks.done(this);
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }
}

function onConnectTimeout(s: TcpSession): void {
  s.connectTimedOut();
}
