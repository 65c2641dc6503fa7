/**
 * Writing lifecycle events: each fact is checked against the container's machine (its state as the log
 * has it), given from/to states, and appended with optimistic concurrency on the container's sequence;
 * when another writer got there first, the state is refreshed from the store and the append retried.
 */
import os from 'node:os';
import { type CordonEvent, type EventAction, newEvent } from '../events/schema.js';
import { ConcurrencyError, type EventStore } from '../events/store.js';
import { refusal } from '../machines/commands.js';
import { type LifecycleState, initialLifecycle, reduce } from '../machines/lifecycle.js';
import { applyFact, machineEventsOf } from '../machines/replay.js';

/** The host id events carry (CORDON_HOST or the machine's hostname). */
export function defaultHostId(): string {
  return process.env.CORDON_HOST || os.hostname();
}

/** Records facts of containers into an EventStore, keeping each container's machine state. */
export class EventRecorder {
  readonly store: EventStore;
  readonly host: string;
  private readonly states = new Map<string, { state: LifecycleState; seq: number }>();
  /** The state record each container's latest `create` fact carried (for rebuilding a lost state dir). */
  private readonly created = new Map<string, Record<string, unknown>>();
  private loaded = false;
  private unsubscribe?: () => void;

  constructor(store: EventStore, host = defaultHostId()) {
    this.store = store;
    this.host = host;
  }

  /** Rebuild every container's state from the store (once; later appends keep it current). */
  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    // Stay current with appends by other writers (CLI verbs next to a daemon) as they arrive.
    this.unsubscribe = this.store.subscribe((e) => this.fold(e));
    for (const e of await this.store.read(1)) this.fold(e);
  }

  private fold(e: CordonEvent): void {
    const cur = this.states.get(e.containerId);
    if (cur && e.containerSeq <= cur.seq) return;
    const rec = e.attributes.record;
    if (e.action === 'create') {
      if (rec && typeof rec === 'object' && !Array.isArray(rec)) this.created.set(e.containerId, rec as Record<string, unknown>);
      else this.created.delete(e.containerId);
    }
    this.states.set(e.containerId, { state: applyFact(cur?.state ?? initialLifecycle(e.containerId), e), seq: e.containerSeq });
  }

  /** The container's lifecycle state as the log has it (`creating` when it has no events). */
  async stateOf(id: string): Promise<LifecycleState> {
    await this.load();
    return this.states.get(id)?.state ?? initialLifecycle(id);
  }

  /** The state record the container's latest `create` fact carried, if it carried one. */
  async createdRecordOf(id: string): Promise<Record<string, unknown> | undefined> {
    await this.load();
    return this.created.get(id);
  }

  /** Ids of containers the log knows, with their states. */
  async all(): Promise<Map<string, LifecycleState>> {
    await this.load();
    return new Map([...this.states].map(([k, v]) => [k, v.state]));
  }

  /**
   * Append a fact. Throws LifecycleError when the machine cannot take it in the container's state (so an
   * illegal command is refused before anything is written); retries on ConcurrencyError.
   */
  async record(containerId: string, action: EventAction, attributes: Record<string, unknown> = {}): Promise<CordonEvent> {
    await this.load();
    for (let attempt = 0; ; attempt++) {
      const cur = this.states.get(containerId) ?? { state: initialLifecycle(containerId), seq: 0 };
      // A destroyed id may be created again (runc allows it): the new container starts from the initial state.
      let next = cur.state.value === 'destroyed' && action === 'create' ? initialLifecycle(containerId) : cur.state;
      for (const ev of machineEventsOf({ action, containerId, attributes })) {
        const after = reduce(next, ev);
        if (after === next && action !== 'error') throw refusal(containerId, next.value, ev);
        next = after;
      }
      const transition = next.value !== cur.state.value ? { from: cur.state.value, to: next.value } : undefined;
      try {
        const [stored] = await this.store.append([newEvent(this.host, containerId, action, attributes, transition)], { expectedContainerSeq: cur.seq });
        this.states.set(containerId, { state: next, seq: stored.containerSeq });
        return stored;
      } catch (e) {
        if (!(e instanceof ConcurrencyError) || attempt >= 5) throw e;
        // Another writer appended for this container: take its events, then decide again.
        for (const ev of (await this.store.read(1)).filter((x) => x.containerId === containerId)) this.fold(ev);
      }
    }
  }

  /** Stop following the store. */
  close(): void {
    this.unsubscribe?.();
  }

  /** Like record(), but never throws: for facts that must not break the operation that observed them. */
  async tryRecord(containerId: string, action: EventAction, attributes: Record<string, unknown> = {}): Promise<CordonEvent | undefined> {
    try {
      return await this.record(containerId, action, attributes);
    } catch {
      return undefined;
    }
  }
}
