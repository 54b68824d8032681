/**
 * Outlier detection (Istio DestinationRule `outlierDetection`, Envoy consecutive-error
 * ejection, not split by origin as Istio configures it):
 * - every upstream response reports its status; connect failures and resets count as 503,
 *   per-try timeouts as 504 (Envoy's mapping of locally originated errors).
 * - `consecutive5xxErrors` 5xx in a row (default 5, 0 = off) or `consecutiveGatewayErrors`
 *   502/503/504 in a row (default 0 = off) eject the host at once, unless ejecting it would
 *   exceed `maxEjectionPercent` of the hosts (default 10; Envoy counts the host being
 *   ejected: 100 x (ejected + 1) / hosts <= max).
 * - an ejected host returns on the first interval sweep (`interval`, default 10 s) after
 *   `baseEjectionTime` (default 30 s) x its ejection multiplier, capped at max(300 s, base);
 *   the multiplier grows by one per ejection and shrinks by one at every sweep once the host
 *   has been back for an interval (Envoy's onIntervalTimer).
 * State lives in HostOutlier objects that move with their host across endpoint updates.
 */
import type { OutlierDetection } from '../../tables/index.js';

export const DEFAULTS = {
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 10,
  minHealthPercent: 0,
} as const;
const MAX_EJECTION_TIME_MS = 300_000;

export class HostOutlier {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  ejected = false;
  ejectedAtMs = 0;
  /** Ejection time multiplier (Envoy's eject time backoff). */
  multiplier = 0;
  /** When the host last returned from an ejection (a multiplier > 0 on a host in service implies one). */
  lastUnejectedMs = 0;
  /** Ejections of this host so far (admin). */
  ejections = 0;
}

export class OutlierStats {
  ejectionsEnforcedTotal = 0;
  ejectionsOverflow = 0;
  ejectionsEnforcedConsecutive5xx = 0;
  ejectionsDetectedConsecutive5xx = 0;
  ejectionsEnforcedConsecutiveGatewayFailure = 0;
  ejectionsDetectedConsecutiveGatewayFailure = 0;
}

/** The cluster side the detector needs. */
export interface OutlierHosts {
  readonly hosts: ReadonlyArray<{ readonly outlier: HostOutlier }>;
  /** Host availability changed: rebuild the balancing sets. */
  hostsChanged(): void;
}

export class OutlierDetector {
  readonly c5xx: number;
  readonly cGateway: number;
  readonly intervalMs: number;
  readonly baseMs: number;
  readonly maxEjectionPercent: number;
  readonly minHealthPercent: number;
  /** The sweep timer runs only while some host is ejected or has a multiplier to decay. */
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    cfg: OutlierDetection,
    private readonly cluster: OutlierHosts,
    readonly stats: OutlierStats,
  ) {
    this.c5xx = cfg.consecutive5xxErrors ?? DEFAULTS.consecutive5xxErrors;
    this.cGateway = cfg.consecutiveGatewayErrors ?? DEFAULTS.consecutiveGatewayErrors;
    this.intervalMs = Math.max(1, cfg.intervalMs ?? DEFAULTS.intervalMs);
    this.baseMs = cfg.baseEjectionTimeMs ?? DEFAULTS.baseEjectionTimeMs;
    this.maxEjectionPercent = cfg.maxEjectionPercent ?? DEFAULTS.maxEjectionPercent;
    this.minHealthPercent = cfg.minHealthPercent ?? DEFAULTS.minHealthPercent;
  }

  /** One upstream result of a host: an HTTP status, or 503/504 for local-origin failures. */
  report(h: HostOutlier, status: number): void {
    if (status < 500) {
      h.consecutive5xx = 0;
      h.consecutiveGateway = 0;
      return;
    }
    if (status >= 502 && status <= 504) {
      if (++h.consecutiveGateway === this.cGateway) {
        this.stats.ejectionsDetectedConsecutiveGatewayFailure++;
        if (this.eject(h)) this.stats.ejectionsEnforcedConsecutiveGatewayFailure++;
      }
    } else {
      h.consecutiveGateway = 0;
    }
    if (++h.consecutive5xx === this.c5xx) {
      this.stats.ejectionsDetectedConsecutive5xx++;
      if (this.eject(h)) this.stats.ejectionsEnforcedConsecutive5xx++;
    }
  }

  ejectedCount(): number {
    let n = 0;
    for (const h of this.cluster.hosts) if (h.outlier.ejected) n++;
    return n;
  }

  private eject(h: HostOutlier): boolean {
    if (this.closed || h.ejected) return false;
    const total = this.cluster.hosts.length;
    if (total === 0 || (100 * (this.ejectedCount() + 1)) / total > this.maxEjectionPercent) {
      this.stats.ejectionsOverflow++;
      return false;
    }
    h.ejected = true;
    h.ejectedAtMs = performance.now();
    if (h.multiplier * this.baseMs < this.maxMs() + this.baseMs) h.multiplier++;
    h.ejections++;
    this.stats.ejectionsEnforcedTotal++;
    this.startTimer();
    this.cluster.hostsChanged();
    return true;
  }

  /** Starts the sweep if a host needs it (also for hosts that arrive ejected from a previous cluster version). */
  watch(): void {
    if (this.timer !== null || this.closed) return;
    for (const { outlier: h } of this.cluster.hosts)
      if (h.ejected || h.multiplier > 0) {
        this.startTimer();
        return;
      }
  }

  private startTimer(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setInterval(sweep, this.intervalMs, this);
    this.timer.unref();
  }

  private maxMs(): number {
    return Math.max(MAX_EJECTION_TIME_MS, this.baseMs);
  }

  /** The interval sweep: returns hosts whose ejection time is over. */
  sweep(): void {
    const now = performance.now();
    let changed = false;
    let pending = false;
    for (const { outlier: h } of this.cluster.hosts) {
      if (h.ejected || h.multiplier > 0) pending = true;
      if (!h.ejected) {
        if (h.multiplier > 0 && now - h.lastUnejectedMs >= this.intervalMs) h.multiplier--;
        continue;
      }
      if (now - h.ejectedAtMs >= Math.min(this.baseMs * h.multiplier, this.maxMs())) {
        h.ejected = false;
        h.lastUnejectedMs = now;
        h.consecutive5xx = 0;
        h.consecutiveGateway = 0;
        changed = true;
      }
    }
    if (!pending) this.stopTimer();
    if (changed) this.cluster.hostsChanged();
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function sweep(d: OutlierDetector): void {
  d.sweep();
}
