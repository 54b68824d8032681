/**
 * Kubernetes Events (core/v1) about mesh resources, as client-go's recorder writes them: the
 * caller emits only on a change of state (accepted -> a warning reason and back), and an
 * Event seen before in this process (a resource flapping between two states) is not created
 * again: its `count` and `lastTimestamp` are patched, as the event correlator does.
 */
import type { ReflectorLogger } from '../config-source/kubernetes-reflector.js';
import type { KubeObject, KubeRest } from '../config-source/kubernetes-rest.js';

export const EVENT_COMPONENT = 'isthmus-controller';
/** The apiserver rejects longer messages. */
const MAX_MESSAGE = 1024;

export interface MeshEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
}

const eventsPath = (ns: string, name?: string) => `/api/v1/namespaces/${ns}/events${name ? `/${name}` : ''}`;

export class EventRecorder {
  /** `uid|type|reason|message` -> the Event written for it. */
  private readonly recorded = new Map<string, Recorded>();

  constructor(
    private readonly rest: KubeRest,
    private readonly instance: string,
    private readonly log?: ReflectorLogger,
  ) {}

  async emit(object: KubeObject, e: MeshEvent): Promise<void> {
    const meta = object.metadata ?? {};
    const ns = meta.namespace ?? 'default';
    const message = e.message.length > MAX_MESSAGE ? `${e.message.slice(0, MAX_MESSAGE - 3)}...` : e.message;
    const key = `${meta.uid}|${e.type}|${e.reason}|${message}`;
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const seen = this.recorded.get(key);
    try {
      if (seen) {
        seen.count++;
        await this.rest.mergePatch(eventsPath(seen.namespace, seen.name), {
          count: seen.count,
          lastTimestamp: now,
        });
        return;
      }
      // client-go's naming: <object>.<hex nanoseconds>.
      const name = `${meta.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(this.recorded.size)).toString(16)}`;
      await this.rest.create(eventsPath(ns), {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: ns },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: meta.name,
          namespace: ns,
          uid: meta.uid,
          resourceVersion: meta.resourceVersion,
        },
        type: e.type,
        reason: e.reason,
        message,
        source: { component: EVENT_COMPONENT },
        reportingComponent: EVENT_COMPONENT,
        reportingInstance: this.instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
      this.recorded.set(key, { name, namespace: ns, count: 1 });
    } catch (err) {
      // Events are best effort (as in client-go): a lost Event never blocks status.
      if (seen) this.recorded.delete(key);
      this.log?.warn('could not record an Event', {
        object: `${object.kind} ${ns}/${meta.name}`,
        reason: e.reason,
        error: String(err),
      });
    }
  }

  /** Forget Events of objects that no longer exist. */
  retain(uids: ReadonlySet<string>): void {
    for (const key of this.recorded.keys())
      if (!uids.has(key.slice(0, key.indexOf('|')))) this.recorded.delete(key);
  }
}
