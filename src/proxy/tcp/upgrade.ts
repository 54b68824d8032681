/**
 * HTTP/1.1 Upgrade (WebSocket and friends) on a forward route: the request goes to an
 * endpoint of the chosen cluster on a dedicated connection with its Upgrade/Connection
 * headers; from then on both sockets are piped as they are (the 101 and whatever follows).
 * Recorded as one request with the upstream's status (101) when the tunnel closes.
 * `h2c` upgrades are not tunnelled (Envoy strips them): the request is proxied as plain HTTP/1.1.
 */
import net, { type Socket } from 'node:net';
import { Body, Flag } from '../flags.js';
import { getHeader } from '../headers.js';
import type { Downstream } from '../http/downstream.js';
import { writeLocal } from '../http/local-reply.js';
import type { RequestRecorder } from '../http/recorder.js';
import { Http1Stream, type StreamOwner } from '../http1/stream.js';
import { peerOfStream } from '../tls/peer.js';
import type { ClusterState } from '../upstream/cluster.js';
import type { EndpointState } from '../upstream/endpoint.js';

/**
 * The Upgrade protocol of a request that asks to switch (Connection: upgrade + Upgrade, on
 * HTTP/1.1 without a body), else null. `connection` is the request's Connection header.
 */
export function upgradeOf(stream: Downstream, connection: string | undefined): string | null {
  if (connection === undefined || !(stream instanceof Http1Stream) || stream.bodyMode !== 0) return null;
  if (!/(^|,)\s*upgrade\s*(,|$)/i.test(connection)) return null;
  const upgrade = getHeader(stream.rawHeaders, 'upgrade');
  if (upgrade === undefined || upgrade.trim().toLowerCase() === 'h2c') return null;
  return upgrade;
}

class UpgradeTunnel implements StreamOwner {
  private up: Socket | null = null;
  private down: Socket | null = null;
  private status = 0;
  private flags = 0;
  private done = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stream: Http1Stream,
    private readonly cluster: ClusterState,
    private readonly endpoint: EndpointState,
    private readonly recorder: RequestRecorder,
    private readonly head: string,
    private readonly startMs: number,
  ) {
    stream.owner = this;
  }

  start(): void {
    const ep = this.endpoint;
    ep.active++;
    ep.total++;
    this.cluster.stats.rqTotal++;
    const up =
      ep.transport?.connect(ep.address, ep.port, 'http1') ??
      net.connect({ host: ep.address, port: ep.port, noDelay: true });
    this.up = up;
    up.on('error', (err) => this.upError(err));
    up.once(ep.transport ? 'secureConnect' : 'connect', () => this.connected());
    this.timer = setTimeout(onConnectTimeout, this.cluster.def.connectTimeoutMs ?? 10_000, this);
  }

  connectTimedOut(): void {
    this.timer = null;
    if (this.down === null) this.upError(new Error('connect timeout'));
  }

  // StreamOwner: the request has no body; only the client going away matters before the switch.
  streamData(): void {}
  streamEnd(): void {}
  streamDrain(): void {}
  streamClosed(): void {
    if (this.down === null) {
      this.flags |= Flag.DC;
      this.up?.destroy();
      this.finish(0);
    }
  }

  private upError(err: Error): void {
    if (this.down !== null) {
      this.down.destroy();
      return;
    }
    if (this.done) return;
    this.up?.destroy();
    this.cluster.stats.cxConnectFail++;
    this.recorder.debugError(err);
    this.flags |= Flag.UF;
    const n = writeLocal(this.stream, 503, Body.connectFailure, null);
    this.finish(n, 503);
  }

  private connected(): void {
    if (this.done) return;
    this.clearTimer();
    const up = this.up!;
    const stream = this.stream;
    const rest = stream.conn.detach();
    const down = stream.conn.socket;
    this.down = down;
    up.write(this.head, 'latin1');
    if (rest !== null) up.write(rest);
    up.once('data', (first: Buffer) => {
      // "HTTP/1.1 101 ..." : the status code of the upstream's answer, for metrics.
      const code = Number(first.toString('latin1', 9, 12));
      this.status = Number.isInteger(code) ? code : 0;
    });
    let closes = 0;
    const closed = () => {
      if (++closes === 2) this.finish(down.bytesWritten);
    };
    up.on('close', (hadError: boolean) => {
      if (hadError) down.destroy();
      else down.end();
      closed();
    });
    down.on('close', (hadError: boolean) => {
      if (hadError) up.destroy();
      else up.end();
      closed();
    });
    down.on('error', noop);
    down.pipe(up);
    up.pipe(down);
    down.resume();
  }

  private finish(responseBytes: number, status = this.status): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.endpoint.active--;
    const requestBytes = this.down !== null ? this.down.bytesRead : 0;
    this.recorder.record(
      this.cluster,
      this.endpoint,
      status,
      this.flags,
      this.startMs,
      requestBytes,
      responseBytes,
      0,
      -1,
      peerOfStream(this.stream),
      this.stream,
    );
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

function onConnectTimeout(t: UpgradeTunnel): void {
  t.connectTimedOut();
}

function noop(): void {}

/**
 * Tunnels an Upgrade request to `cluster`. `headers` are the forwarded request headers
 * (hop-by-hop ones already removed); Connection and Upgrade are added back.
 */
export function tunnelUpgrade(
  stream: Downstream,
  cluster: ClusterState,
  recorder: RequestRecorder,
  path: string,
  headers: readonly string[],
  upgrade: string,
  startMs: number,
): void {
  const s = stream as Http1Stream;
  // Consistent hash (sticky WebSockets): the hash key from the upgrade request.
  const endpoint = cluster.pick(
    cluster.hashed || cluster.passthrough ? { headers, path, res: stream, setCookie: null } : null,
  );
  if (endpoint === undefined) {
    cluster.stats.rqNoHealthy++;
    const n = writeLocal(s, 503, Body.noHealthyUpstream, null);
    recorder.record(cluster, null, 503, Flag.UH, startMs, 0, n, 0, -1, peerOfStream(s), s);
    return;
  }
  let head = `${s.method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  head += `connection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
  new UpgradeTunnel(s, cluster, endpoint, recorder, head, startMs).start();
}
