/**
 * The supervisor: one long-lived process holding an actor per container of its host (a ContainerHost that
 * watches every container's exit and OOM kills). On start it rebuilds every container from the log and
 * reconciles it with the kernel (re-adopting live processes, recording exits that happened while it was
 * down); with NATS it forwards the journal to JetStream. Verbs go through the host's machines like every
 * door's; nothing an actor does can crash it: failures become `error` events or reach onError.
 */
import path from 'node:path';
import type { Observable } from 'rxjs';
import type { InspectionEvent, Observer } from 'xstate';
import { JournalStore } from '../events/journal.js';
import type { JetStreamOutbox, OutboxOptions } from '../events/jetstream-outbox.js';
import type { NatsOptions } from '../events/nats-connection.js';
import { type EventFilter, events$ } from '../events/observable.js';
import type { CordonEvent } from '../events/schema.js';
import type { EventStore } from '../events/store.js';
import { LifecycleError } from '../errors/index.js';
import type { ContainerContext, ContainerStateName } from '../machines/container.js';
import { type ContainerActor, ContainerHost } from './container-host.js';
import { toLifecycleError } from './errors.js';
import { isDamagedState } from './state-file.js';
import type { CreateOptions } from './verbs/create.js';
import { defaultHostId, openRecorderJournal } from './event-recorder.js';
import fs from 'node:fs';

/** How often a supervisor looks for verbs other processes left midway (one readdir when there are none). */
const SWEEP_MS = 2000;

/** Options of Supervisor.start. */
export interface SupervisorOptions {
  /** State root (default /run/cordon): container state dirs and, for the embedded store, events.journal. */
  root?: string;
  /** Event store (default: the embedded journal in the root). */
  store?: EventStore;
  /** Host id in events (default CORDON_HOST or the hostname). */
  host?: string;
  /** Called with errors the supervisor caught (for logging). */
  onError?: (e: Error) => void;
  /** Called with conditions a verb tolerated (a poststop hook that failed, a config accepted with a note). */
  onWarning?: (message: string) => void;
  /** Forward the journal's events to JetStream (outbox; restores an empty journal from it at start). */
  nats?: NatsOptions;
  /** Tuning of that forwarding (stream replicas, lease TTL, publish timeout, backoff). */
  natsOutbox?: Pick<OutboxOptions, 'replicas' | 'leaseTtlMs' | 'publishTimeoutMs' | 'maxBackoffMs'>;
  /** xstate's `inspect` for every container actor (see actors/inspection.ts: Stately inspector, NATS). */
  inspect?: Observer<InspectionEvent>;
}

/** What recovery found, per container. */
export interface RecoveryReport {
  adopted: string[];
  exitedWhileDown: string[];
  unchanged: string[];
  /** Containers whose state.json was rebuilt from their `create` event (the state dir was lost, the process lives). */
  restoredRecords: string[];
  /**
   * Containers whose state.json is damaged (StateCorrupt, reported through onError): not held, so recovery and
   * the other containers go on; `delete --force` removes them.
   */
  damaged: string[];
}

/** The supervisor of one host's containers. */
export class Supervisor {
  /** The host's containers as actors: every verb goes through them. */
  readonly containers: ContainerHost;
  readonly recovery: RecoveryReport = { adopted: [], exitedWhileDown: [], unchanged: [], restoredRecords: [], damaged: [] };
  #outbox?: JetStreamOutbox;
  #ownedStore?: EventStore;
  #sweep?: NodeJS.Timeout;

  private constructor(containers: ContainerHost, outbox: JetStreamOutbox | undefined, ownedStore: EventStore | undefined) {
    this.containers = containers;
    this.#outbox = outbox;
    this.#ownedStore = ownedStore;
  }

  /** The JetStream publisher, when started with `nats`. */
  get outbox(): JetStreamOutbox | undefined {
    return this.#outbox;
  }

  /** Open the store, replay it, reconcile with the kernel and start following. */
  static async start(opts: SupervisorOptions = {}): Promise<Supervisor> {
    const root = opts.root ?? '/run/cordon';
    fs.mkdirSync(root, { recursive: true, mode: 0o711 });
    const store = opts.store ?? openRecorderJournal(path.join(root, 'events.journal'), opts.onWarning);
    const host = opts.host ?? defaultHostId();
    let outbox: JetStreamOutbox | undefined;
    let containers: ContainerHost | undefined;
    try {
      if (opts.nats) {
        // The journal stays the write path; the outbox forwards it (and fills an empty one from JetStream first).
        if (!(store instanceof JournalStore)) throw new LifecycleError('BadRequest', 'Supervisor: `nats` forwards the embedded journal; do not pass another store', { field: 'nats' });
        // Loaded only with NATS: the client modules cost a supervisor without it ~7 MB of RSS.
        const { JetStreamOutbox } = await import('../events/jetstream-outbox.js');
        outbox = await JetStreamOutbox.start({ ...opts.natsOutbox, journal: store, host, nats: opts.nats, onError: opts.onError });
      }
      containers = await ContainerHost.open({ root, store, host, watch: 'all', inspect: opts.inspect, onError: opts.onError, onWarning: opts.onWarning });
      const s = new Supervisor(containers, outbox, opts.store ? undefined : store);
      await containers.recoverAbandoned();
      await s.recover(opts.onError);
      s.sweepAbandoned(opts.onError);
      return s;
    } catch (e) {
      await containers?.close();
      await outbox?.stop();
      if (!opts.store) await store.close();
      throw toLifecycleError(e);
    }
  }

  /**
   * While it runs, a verb another process left midway (a CLI killed during create leaves an init parked at
   * its exec fifo) is finished or undone within SWEEP_MS, not only when someone next touches the container.
   */
  private sweepAbandoned(onError?: (e: Error) => void): void {
    let busy = false;
    this.#sweep = setInterval(() => {
      if (busy || this.containers.locks.pending().length === 0) return;
      busy = true;
      this.containers.recoverAbandoned().catch((e: unknown) => onError?.(toLifecycleError(e))).finally(() => (busy = false));
    }, SWEEP_MS);
    this.#sweep.unref();
  }

  /** Rebuild every container from the log, make it agree with the kernel, hold its actor. */
  private async recover(onError?: (e: Error) => void): Promise<void> {
    for (const [id, st] of await this.containers.recorder.all()) {
      if (st.value === 'destroyed' || st.value === 'creating') continue;
      let found;
      try {
        found = await this.containers.recover(id);
      } catch (e) {
        // One container's damaged state file does not keep the host's supervisor from starting.
        if (!isDamagedState(e)) throw e;
        this.recovery.damaged.push(id);
        onError?.(new LifecycleError('StateCorrupt', `recover ${id}: ${e.message}; it is not supervised (delete --force removes it)`, { cause: e }));
        continue;
      }
      if (found.includes('restored-record')) this.recovery.restoredRecords.push(id);
      if (found.includes('adopted')) this.recovery.adopted.push(id);
      else if (found.includes('exited-while-down')) this.recovery.exitedWhileDown.push(id);
      else this.recovery.unchanged.push(id);
    }
  }

  /** The host id on events. */
  get host(): string {
    return this.containers.host;
  }

  /** The state root. */
  get root(): string {
    return this.containers.state.root;
  }

  /** The event store. */
  get store(): EventStore {
    return this.containers.store;
  }

  /** The actor of a container it supervises. */
  actorOf(id: string): ContainerActor | undefined {
    return this.containers.held(id);
  }

  /** Create a container from a bundle (parked before its process runs). */
  async create(id: string, opts: CreateOptions): Promise<void> {
    await this.containers.create(id, opts);
  }

  /** Start a created container. */
  start(id: string): Promise<void> {
    return this.containers.start(id);
  }

  /** Signal its init (or every process with `all`). */
  kill(id: string, signal = 15, opts: { all?: boolean } = {}): Promise<void> {
    return this.containers.kill(id, signal, opts);
  }

  /** Freeze. */
  pause(id: string): Promise<void> {
    return this.containers.pause(id);
  }

  /** Thaw. */
  resume(id: string): Promise<void> {
    return this.containers.resume(id);
  }

  /** Destroy (force: kill a live one first). */
  destroy(id: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.containers.destroy(id, opts);
  }

  /** The machine context of a container (pid, exit, oom count, ...). */
  contextOf(id: string): ContainerContext | undefined {
    return this.containers.held(id)?.getSnapshot().context;
  }

  /** The machine state of a container. */
  stateOf(id: string): ContainerStateName {
    return this.containers.machineState(id) as ContainerStateName;
  }

  /** Ids of the containers it supervises. */
  ids(): string[] {
    return this.containers.ids();
  }

  /** Wait until a container reaches one of `states`. */
  waitFor(id: string, states: ContainerStateName[], timeoutMs = 30_000): Promise<ContainerStateName> {
    return this.containers.waitFor(id, states, timeoutMs);
  }

  /** Events as an Observable. */
  events$(filter: EventFilter = {}): Observable<CordonEvent> {
    return events$(this.containers.store, filter);
  }

  /** Stop following (containers keep running). */
  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    const store = this.containers.store;
    // The next start (or CLI verb) reads only what is appended after this point (not worth a file for a few records).
    if (store instanceof JournalStore) store.snapshot(128);
    await this.containers.close();
    await this.#outbox?.stop();
    await this.#ownedStore?.close();
  }
}
