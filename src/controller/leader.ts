/**
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does:
 * the holder renews `renewTime` every `retryPeriodMs`; a candidate takes the Lease over when
 * it has seen no change of the Lease record for `leaseDurationMs` (measured on its own clock,
 * so clock skew between replicas does not matter). Updates carry the resourceVersion read, so
 * two candidates cannot both win. A leader that cannot renew within `renewDeadlineMs` steps
 * down (and stops writing) before anyone else may take over.
 */
import { hostname } from 'node:os';
import type { ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import { KubeApiError, type KubeObject, type KubeRest } from '../config-source/kubernetes-rest.js';

export interface LeaderElectorOptions {
  rest: KubeRest;
  namespace: string;
  /** Lease name (default `isthmus-controller`). */
  name?: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  log?: ReflectorLogger;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KubeObject & { spec?: LeaseSpec };

/** RFC 3339 with microseconds, as MicroTime expects. */
function microTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly identity: string;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Last observed lease record (holder + renewTime) and when we observed it change. */
  private observed = { record: '', at: 0 };
  private lastRenew = 0;
  private readonly path: string;
  private readonly collection: string;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LeaderElectorOptions) {
    this.identity = opts.identity ?? `${hostname()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    this.collection = `/apis/coordination.k8s.io/v1/namespaces/${opts.namespace}/leases`;
    this.path = `${this.collection}/${opts.name ?? 'isthmus-controller'}`;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.loop = this.tryAcquireOrRenew().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.retryPeriodMs ?? 2000);
      });
    };
    tick();
  }

  /** Stops campaigning; a leader releases the Lease so another replica takes over at once. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.loop;
    if (this.leading && opts.release !== false) {
      try {
        const lease = await this.opts.rest.get<Lease>(this.path);
        if (lease.spec?.holderIdentity === this.identity)
          await this.opts.rest.replace(this.path, {
            ...lease,
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
          });
      } catch {
        /* best effort */
      }
    }
    this.setLeading(false);
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.opts.log?.info(v ? 'became leader' : 'stopped leading', { identity: this.identity });
    if (v) this.opts.onStartedLeading?.();
    else this.opts.onStoppedLeading?.();
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const duration = this.opts.leaseDurationMs ?? 15_000;
    const now = Date.now();
    const spec = (transitions: number, acquire?: string): LeaseSpec => ({
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(duration / 1000)),
      acquireTime: acquire ?? microTime(),
      renewTime: microTime(),
      leaseTransitions: transitions,
    });
    try {
      let lease: Lease | undefined;
      try {
        lease = await this.opts.rest.get<Lease>(this.path);
      } catch (err) {
        if (!(err instanceof KubeApiError) || err.code !== 404) throw err;
      }
      if (!lease) {
        await this.opts.rest.create(this.collection, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.path.slice(this.path.lastIndexOf('/') + 1), namespace: this.opts.namespace },
          spec: spec(0),
        });
        this.renewed(now);
        return;
      }
      const s = lease.spec ?? {};
      const record = `${s.holderIdentity ?? ''}|${s.renewTime ?? ''}`;
      if (record !== this.observed.record) this.observed = { record, at: now };
      const holder = s.holderIdentity ?? '';
      const held = holder === this.identity;
      const leaseMs = (s.leaseDurationSeconds ?? Math.ceil(duration / 1000)) * 1000;
      const expired = !holder || now - this.observed.at >= leaseMs;
      if (!held && !expired) {
        this.setLeading(false);
        return;
      }
      const transitions = (s.leaseTransitions ?? 0) + (held ? 0 : 1);
      await this.opts.rest.replace(this.path, {
        ...lease,
        spec: spec(transitions, held ? s.acquireTime : undefined),
      });
      this.renewed(now);
    } catch (err) {
      // 409: someone else updated first. Anything else: the apiserver is unreachable.
      if (this.leading && Date.now() - this.lastRenew > (this.opts.renewDeadlineMs ?? 10_000)) {
        this.opts.log?.warn('could not renew the leader lease in time', { error: String(err) });
        this.setLeading(false);
      } else if (!this.leading || !(err instanceof KubeApiError) || err.code === 409) {
        if (err instanceof KubeApiError && err.code === 409) this.setLeading(false);
      }
    }
  }

  private renewed(at: number): void {
    this.lastRenew = at;
    this.observed = { record: '', at };
    this.setLeading(true);
  }
}
