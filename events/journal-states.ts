/**
 * The per-container states a journal keeps of its projection (the recorder's lifecycle fold): folded as records
 * are taken in, and taken from a snapshot as JSON text that is decoded only when a container is asked for.
 */
import type { JournalProjection } from './journal-snapshot.js';
import type { CordonEvent } from './schema.js';

/** A projected state as the snapshot had it: JSON text, decoded when first asked for. */
class EncodedState {
  constructor(readonly json: string) {}
}

/** Every container's state in one projection (containers it forgot are absent). */
export class ProjectedStates {
  private readonly states = new Map<string, unknown>();

  constructor(readonly projection: JournalProjection<unknown>) {}

  /** Fold a record into its container's state. */
  apply(e: CordonEvent): void {
    const next = this.projection.apply(this.get(e.containerId), e);
    if (next === undefined) this.states.delete(e.containerId);
    else this.states.set(e.containerId, next);
  }

  /** A container's state (decoded from the snapshot's JSON on first use). */
  get(id: string): unknown {
    const v = this.states.get(id);
    if (!(v instanceof EncodedState)) return v;
    const decoded = JSON.parse(v.json) as unknown;
    this.states.set(id, decoded);
    return decoded;
  }

  /** Take a container's state as a snapshot has it (JSON text). */
  setEncoded(id: string, json: string): void {
    this.states.set(id, new EncodedState(json));
  }

  /** A container's state as JSON text for a snapshot (undefined when it has none). */
  encoded(id: string): string | undefined {
    const v = this.states.get(id);
    return v === undefined ? undefined : v instanceof EncodedState ? v.json : JSON.stringify(v);
  }

  clear(): void {
    this.states.clear();
  }
}
