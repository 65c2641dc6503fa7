/**
 * Writing lifecycle events: each fact is checked against the container's machine (its state as the log
 * has it), given from/to states, and appended with optimistic concurrency on the container's sequence;
 * when another writer got there first, the state is refreshed from the store and the append retried.
 * On the embedded journal the states come from the journal's lifecycle projection (snapshotted next to it),
 * so learning them costs what was appended since the last snapshot, not the whole history.
 */
import os from 'node:os';
import { type JournalOpenOptions, type JournalProjection, JournalStore } from '../events/journal.js';
import { type CordonEvent, type EventAction, newEvent } from '../events/schema.js';
import { ConcurrencyError, type EventStore } from '../events/store.js';
import { LifecycleError } from '../errors/index.js';
import { withFileLock } from '../kernel/index.js';
import { refusal } from '../machines/commands.js';
import { type CommandType, type LifecycleState, initialLifecycle, reduce } from '../machines/lifecycle.js';
import { applyFact, machineEventsOf, startsLife } from '../machines/replay.js';

/** The host id events carry (CORDON_HOST or the machine's hostname). */
export function defaultHostId(): string {
  return process.env.CORDON_HOST || os.hostname();
}

/** What the journal keeps per container for the recorder: its state, and the seq of its latest `create` that carried a record. */
export interface LifecycleProjected {
  state: LifecycleState;
  createdSeq?: number;
}

/** Placeholder state of a destroyed container (its context is not kept: it is gone). */
const destroyedState = (id: string): LifecycleState => ({ value: 'destroyed', context: { id, oomEvents: 0, execs: {} } });

const carriesRecord = (e: CordonEvent) => {
  const rec = e.attributes.record;
  return Boolean(rec && typeof rec === 'object' && !Array.isArray(rec));
};

/**
 * The recorder's fold as a journal projection: every container's lifecycle state. Destroyed containers are
 * forgotten (the journal keeps their containerSeq); a later event of a forgotten one (containerSeq > 1) starts
 * from the destroyed state, as it would had it been kept.
 */
export const LIFECYCLE_PROJECTION: JournalProjection<LifecycleProjected> = {
  name: 'cordon.lifecycle/1',
  apply(prev, e) {
    const cur = prev?.state ?? (e.containerSeq > 1 ? destroyedState(e.containerId) : initialLifecycle(e.containerId));
    const state = applyFact(cur, e);
    if (state.value === 'destroyed') return undefined;
    const createdSeq = e.action === 'create' ? (carriesRecord(e) ? e.seq : undefined) : prev?.createdSeq;
    return createdSeq === undefined ? { state } : { state, createdSeq };
  },
};

/** Open (or create) a host's journal file, its writers serialised by the kernel's flock. */
export function openJournal(file: string, opts: Omit<JournalOpenOptions, 'lock'> = {}): JournalStore {
  return JournalStore.open(file, { ...opts, lock: withFileLock });
}

/**
 * Open the embedded journal as the recorder wants it: with the lifecycle projection (and its snapshots);
 * `onWarning` hears of damage the open (or a later read) quarantined.
 */
export function openRecorderJournal(file: string, onWarning?: (message: string) => void): JournalStore {
  return openJournal(file, { projection: LIFECYCLE_PROJECTION as JournalProjection<unknown>, onWarning });
}

/** Where the log has a container: its lifecycle state after its fact number `seq` (0: none). */
export interface LoggedState {
  seq: number;
  state: LifecycleState;
}

/** Facts that a command of the same name records, for refusing one the log cannot take. */
const COMMAND_OF: Partial<Record<EventAction, CommandType>> = {
  start: 'start', pause: 'pause', resume: 'resume', kill: 'kill', update: 'update', destroy: 'destroy', checkpoint: 'checkpoint', restore: 'restore', 'exec-start': 'exec',
};

const LIVE = new Set(['created', 'running', 'paused']);

/** Records facts of containers into an EventStore, keeping each container's machine state. */
export class EventRecorder {
  readonly store: EventStore;
  readonly host: string;
  private readonly states = new Map<string, { state: LifecycleState; seq: number }>();
  /** The attributes of each container's latest `create` fact that carried a state record, or that event's seq (read when asked). */
  private readonly created = new Map<string, Record<string, unknown> | number>();
  private loaded = false;
  /** Ids of events this recorder is appending (their store echo is not news to it). */
  private readonly own = new Set<string>();
  /** The journal whose lifecycle projection holds the states not asked for yet. */
  private seed?: JournalStore;
  private unsubscribe?: () => void;

  constructor(store: EventStore, host = defaultHostId()) {
    this.store = store;
    this.host = host;
  }

  /** Learn every container's state (once; later appends keep it current). */
  async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    // Stay current with appends by other writers (CLI verbs next to a daemon) as they arrive.
    this.unsubscribe = this.store.subscribe((e) => this.fold(e));
    if (this.store instanceof JournalStore && this.store.projects(LIFECYCLE_PROJECTION as JournalProjection<unknown>)) {
      // The journal folded them already (from its snapshot and what came after): each is taken when first needed.
      this.seed = this.store;
      this.seed.refresh();
      return;
    }
    for (const e of await this.store.read(1)) this.fold(e);
  }

  /**
   * A container's state and containerSeq: ours, or (first time) the journal projection's, which is always
   * consistent with the journal's containerSeq — events after it are folded here, earlier ones skipped.
   */
  private entry(id: string): { state: LifecycleState; seq: number } | undefined {
    const cur = this.states.get(id);
    if (cur || !this.seed) return cur;
    const seq = this.seed.containerSeq(id);
    if (seq === 0) return undefined;
    const p = this.seed.projectedState(LIFECYCLE_PROJECTION, id);
    const taken = { state: p?.state ?? destroyedState(id), seq };
    this.states.set(id, taken);
    if (p?.createdSeq !== undefined) this.created.set(id, p.createdSeq);
    return taken;
  }

  private fold(e: CordonEvent): void {
    const cur = this.entry(e.containerId);
    if (cur && e.containerSeq <= cur.seq) return;
    if (e.action === 'create') {
      if (carriesRecord(e)) this.created.set(e.containerId, e.attributes);
      else this.created.delete(e.containerId);
    }
    this.put(e.containerId, applyFact(cur?.state ?? initialLifecycle(e.containerId), e), e.containerSeq);
  }

  /** Keep a container's state (a destroyed one without its context, as the journal's projection does). */
  private put(id: string, state: LifecycleState, seq: number): void {
    if (state.value === 'destroyed') {
      this.created.delete(id);
      this.states.set(id, { state: destroyedState(id), seq });
    } else this.states.set(id, { state, seq });
  }

  /** The container's lifecycle state as the log has it (`creating` when it has no events). */
  async stateOf(id: string): Promise<LifecycleState> {
    await this.load();
    return this.entry(id)?.state ?? initialLifecycle(id);
  }

  /** The attributes of the container's latest `create` fact when it carried a state record (pid, bundle, record, network...). */
  async createdAttributesOf(id: string): Promise<Record<string, unknown> | undefined> {
    await this.load();
    this.entry(id);
    const c = this.created.get(id);
    if (typeof c !== 'number') return c;
    const [e] = this.store instanceof JournalStore ? await this.store.read(c, c) : [];
    return e && e.containerId === id && carriesRecord(e) ? e.attributes : undefined;
  }

  /** The state record the container's latest `create` fact carried, if it carried one. */
  async createdRecordOf(id: string): Promise<Record<string, unknown> | undefined> {
    return (await this.createdAttributesOf(id))?.record as Record<string, unknown> | undefined;
  }

  /** Ids of containers the log knows, with their states. */
  async all(): Promise<Map<string, LifecycleState>> {
    await this.load();
    const seed = this.seed;
    if (seed) return new Map(seed.containers().map((id) => [id, (this.entry(id) as { state: LifecycleState }).state]));
    return new Map([...this.states].map(([k, v]) => [k, v.state]));
  }

  /**
   * Append a fact. Throws LifecycleError when the log cannot take it in the container's state (another
   * writer moved the container first); retries on ConcurrencyError; a store that cannot write throws (the
   * journal's EventLogFailed naming its file and errno). Never drops a fact quietly.
   */
  async record(containerId: string, action: EventAction, attributes: Record<string, unknown> = {}): Promise<CordonEvent> {
    await this.load();
    for (let attempt = 0; ; attempt++) {
      const cur = this.entry(containerId) ?? { state: initialLifecycle(containerId), seq: 0 };
      // A destroyed id may be created again (runc allows it): the new container starts from the initial state.
      let next = cur.state.value === 'destroyed' && startsLife({ action, attributes }) ? initialLifecycle(containerId) : cur.state;
      const events = machineEventsOf({ action, containerId, attributes });
      // A checkpoint with --leave-running moves nothing, but only a live container takes it.
      if (action === 'checkpoint' && events.length === 0 && !['running', 'paused'].includes(next.value)) throw this.refused(containerId, next.value, action);
      for (const ev of events) {
        const after = reduce(next, ev);
        if (after === next && action !== 'error') throw this.refused(containerId, next.value, action);
        next = after;
      }
      const transition = next.value !== cur.state.value ? { from: cur.state.value, to: next.value } : undefined;
      const event = newEvent(this.host, containerId, action, attributes, transition);
      this.own.add(event.id);
      try {
        const [stored] = await this.store.append([event], { expectedContainerSeq: cur.seq });
        this.put(containerId, next, stored.containerSeq);
        return stored;
      } catch (e) {
        if (!(e instanceof ConcurrencyError)) throw e;
        if (attempt >= 20) throw new LifecycleError('EventLogFailed', `container ${containerId}: ${action} not recorded: other writers kept appending first (${e.message})`, { cause: e });
        // Another writer appended for this container: take its events, then decide again. (The journal
        // delivered them to fold() already when it caught up before refusing; other stores are read again.)
        if (this.store instanceof JournalStore) this.store.refresh();
        else for (const ev of (await this.store.read(1)).filter((x) => x.containerId === containerId)) this.fold(ev);
      } finally {
        this.own.delete(event.id);
      }
    }
  }

  /** The refusal of a fact the log cannot take: a command's own code when it is a command's fact. */
  private refused(id: string, state: string, action: EventAction): LifecycleError {
    const command = COMMAND_OF[action];
    if (command) return refusal(id, state, { type: command, force: true });
    return new LifecycleError(LIVE.has(state) ? 'SystemError' : 'ContainerNotRunning', `container ${id}: the log cannot take "${action}" while it is ${state}`, { state });
  }

  /**
   * Record the exit of a container the log still has live (created, running, paused); false when another
   * writer recorded how it ended first (a daemon's watcher and a CLI's delete may both see it go).
   */
  async recordExit(containerId: string, attributes: Record<string, unknown>): Promise<boolean> {
    for (;;) {
      const now = await this.stateOf(containerId);
      if (!LIVE.has(now.value)) return false;
      // The exit of an earlier container of the same id (its watcher woke late) is not this one's.
      if (typeof attributes.pid === 'number' && typeof now.context.pid === 'number' && attributes.pid !== now.context.pid) return false;
      try {
        await this.record(containerId, 'exit', attributes);
        return true;
      } catch (e) {
        // The log moved on between the look and the append: look again (it now says stopped, or still live).
        if (!(e instanceof LifecycleError) || e.code === 'EventLogFailed' || LIVE.has((await this.stateOf(containerId)).value)) throw e;
      }
    }
  }

  /**
   * Resolve with where the log has container `id` once `ok` holds for it (checked on every append by any
   * writer), or with where it is after `timeoutMs`.
   */
  async waitFor(id: string, ok: (s: LoggedState) => boolean, timeoutMs: number): Promise<LoggedState> {
    await this.load();
    if (ok(this.logged(id))) return this.logged(id);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve(this.logged(id));
      };
      // Subscribed after the recorder's own fold, so the state is current when this runs.
      const unsubscribe = this.store.subscribe((e) => {
        if (e.containerId === id && ok(this.logged(id))) done();
      });
      const timer = setTimeout(done, timeoutMs);
      if (this.store instanceof JournalStore) this.store.refresh();
    });
  }

  /** Where the log has a container now (after load: synchronous). */
  logged(id: string): LoggedState {
    const e = this.entry(id);
    return e ? { seq: e.seq, state: e.state } : { seq: 0, state: initialLifecycle(id) };
  }

  /** Whether this recorder appended the event with this id and is still waiting for the store (own facts). */
  isOwn(eventId: string): boolean {
    return this.own.has(eventId);
  }

  /** Stop following the store. */
  close(): void {
    this.unsubscribe?.();
  }

}
