/**
 * Where mesh state comes from. One interface for local mode (a directory of YAML) and the
 * cluster (informers, later): both hand out complete, validated MeshSnapshots, so everything
 * downstream (compiler, publisher) is the same in both modes.
 */
import type { MeshSnapshot } from '../registry/types.js';

export interface RejectedDocument {
  /** `dir/reviews.yaml#2` or `VirtualService shop/reviews`. */
  source: string;
  /** Validation messages (src/validation wording, with field paths). */
  messages: string[];
  /** True when an earlier valid version of the object is still in use. */
  keptPrevious: boolean;
}

export interface SnapshotEvent {
  snapshot: MeshSnapshot;
  /** Documents skipped in this load; the rest of the input still applies. */
  rejected: RejectedDocument[];
}

export interface ConfigSource {
  /** Loads the initial state; resolves with the first snapshot. Errors only if the source itself is unusable. */
  start(): Promise<SnapshotEvent>;
  /** The latest snapshot (undefined before start). */
  current(): MeshSnapshot | undefined;
  /**
   * Called after each change that produced a new snapshot version or changed which documents
   * are rejected (coalesced; never for a no-op such as touching a file). Returns an
   * unsubscribe function.
   */
  onSnapshot(listener: (e: SnapshotEvent) => void): () => void;
  close(): Promise<void>;
}
