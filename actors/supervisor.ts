/**
 * The supervisor: one long-lived process that owns an xstate actor per container, routes commands to
 * them (refusing illegal ones with typed errors before touching the kernel), keeps them in step with the
 * event log, watches exits and OOM kills, and on start rebuilds every container from the log and
 * reconciles it with the kernel (re-adopting live processes, recording exits that happened while it was
 * down). Nothing an actor does can crash it: failures become `error` events.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Observable } from 'rxjs';
import { type Actor, type InspectionEvent, type Observer, createActor, fromCallback, fromPromise } from 'xstate';
import { JournalStore } from '../events/journal.js';
import { type EventFilter, events$ } from '../events/observable.js';
import type { CordonEvent } from '../events/schema.js';
import type { EventStore } from '../events/store.js';
import type { JetStreamOutbox, OutboxOptions } from '../events/jetstream-outbox.js';
import type { NatsOptions } from '../events/nats-connection.js';
import { isNoSuchProcess, openPidfd, waitPidfd, isSameProcess } from '../kernel/index.js';
import { type ContainerContext, type ContainerEvent, type ContainerStateName, containerMachine } from '../machines/container.js';
import { LifecycleError, refusal } from '../machines/commands.js';
import type { LifecycleState } from '../machines/lifecycle.js';
import { machineEventsOf } from '../machines/replay.js';
import { CgroupOperations } from './cgroup-operations.js';
import { EventRecorder, defaultHostId, openRecorderJournal } from './event-recorder.js';
import { type CreateOptions, OciRuntime } from './oci-runtime.js';
import { type NetworkRecord, writeNetworkRecord } from './network.js';
import { type ContainerRecord, RuntimeError } from './state-dir.js';

/** Options of Supervisor.start. */
export interface SupervisorOptions {
  /** State root (default /run/cordon): container state dirs and, for the embedded store, events.journal. */
  root?: string;
  /** Event store (default: the embedded journal in the root). */
  store?: EventStore;
  /** Host id in events (default CORDON_HOST or the hostname). */
  host?: string;
  /** Called with errors the supervisor caught and recorded (for logging). */
  onError?: (e: Error) => void;
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
}

type ContainerActor = Actor<typeof containerMachine>;

/** The supervisor of one host's containers. */
export class Supervisor {
  readonly runtime: OciRuntime;
  readonly recorder: EventRecorder;
  readonly store: EventStore;
  readonly cgroups: CgroupOperations;
  readonly recovery: RecoveryReport = { adopted: [], exitedWhileDown: [], unchanged: [], restoredRecords: [] };
  /** The JetStream publisher, when started with `nats`. */
  outbox?: JetStreamOutbox;
  private readonly actors = new Map<string, ContainerActor>();
  private readonly ownsStore: boolean;
  private unsubscribe: () => void = () => {};
  private readonly onError: (e: Error) => void;
  private inspect?: Observer<InspectionEvent>;

  private constructor(runtime: OciRuntime, recorder: EventRecorder, store: EventStore, ownsStore: boolean, onError?: (e: Error) => void) {
    this.runtime = runtime;
    this.recorder = recorder;
    this.store = store;
    this.ownsStore = ownsStore;
    this.cgroups = new CgroupOperations(runtime.state);
    this.onError = onError ?? (() => {});
  }

  /** Open the store, replay it, reconcile with the kernel and start following. */
  static async start(opts: SupervisorOptions = {}): Promise<Supervisor> {
    const root = opts.root ?? '/run/cordon';
    fs.mkdirSync(root, { recursive: true, mode: 0o711 });
    const store = opts.store ?? openRecorderJournal(path.join(root, 'events.journal'));
    const host = opts.host ?? defaultHostId();
    let outbox: JetStreamOutbox | undefined;
    if (opts.nats) {
      // The journal stays the write path; the outbox forwards it (and fills an empty one from JetStream first).
      try {
        if (!(store instanceof JournalStore)) throw new Error('Supervisor: `nats` forwards the embedded journal; do not pass another store');
        // Loaded only with NATS: the client modules cost a supervisor without it ~7 MB of RSS.
        const { JetStreamOutbox } = await import('../events/jetstream-outbox.js');
        outbox = await JetStreamOutbox.start({ ...opts.natsOutbox, journal: store, host, nats: opts.nats, onError: opts.onError });
      } catch (e) {
        if (!opts.store) await store.close();
        throw e;
      }
    }
    const recorder = new EventRecorder(store, host);
    const runtime = new OciRuntime(root, { recorder });
    const s = new Supervisor(runtime, recorder, store, !opts.store, opts.onError);
    s.outbox = outbox;
    s.inspect = opts.inspect;
    await s.recover();
    // Every appended fact (ours or another process's) moves the container's actor.
    s.unsubscribe = store.subscribe((e) => s.deliver(e));
    return s;
  }

  private deliver(e: CordonEvent): void {
    const a = this.actors.get(e.containerId);
    if (!a) {
      // A container created by this process or another one (CLI verbs next to the daemon): supervise it.
      if (e.action === 'create') void this.recorder.stateOf(e.containerId).then((st) => this.actors.has(e.containerId) || this.adopt(e.containerId, st));
      return;
    }
    for (const ev of machineEventsOf(e)) a.send(ev);
    if (e.action === 'destroy') this.drop(e.containerId);
  }

  /** Rebuild from the log, then make it agree with the kernel. */
  private async recover(): Promise<void> {
    for (const [id, st] of await this.recorder.all()) {
      if (st.value === 'destroyed' || st.value === 'creating') continue;
      if (st.value !== 'stopped') await this.restoreRecord(id);
      const alive = this.isAlive(id);
      if ((st.value === 'created' || st.value === 'running' || st.value === 'paused') && !alive) {
        await this.recorder.tryRecord(id, 'exit', { exitCode: null, signal: null, unknown: true, reason: 'gone while the supervisor was down' });
        this.recovery.exitedWhileDown.push(id);
      } else if (alive) this.recovery.adopted.push(id);
      else this.recovery.unchanged.push(id);
      this.adopt(id, await this.recorder.stateOf(id));
    }
  }

  /**
   * A state dir lost (or a fresh one restored from JetStream) while the container's process lives on: write
   * its state.json back from the record its `create` fact carried, when that pid still is the same process.
   */
  private async restoreRecord(id: string): Promise<void> {
    try {
      this.runtime.state.read(id);
      return;
    } catch (e) {
      if (!(e instanceof RuntimeError) || e.code !== 'not-found') return;
    }
    const fact = await this.recorder.createdAttributesOf(id);
    const rec = fact?.record as Record<string, unknown> | undefined;
    if (!rec || rec.id !== id || typeof rec.pid !== 'number' || typeof rec.pidStartTime !== 'string') return;
    if (!isSameProcess(rec.pid, BigInt(rec.pidStartTime))) return;
    const dir = this.runtime.state.dir(id);
    fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
    // network.json first: delete tears down what it lists (CNI DEL frees the IPAM lease), state.json makes it visible.
    const net = fact?.networkRecord;
    if (net && typeof net === 'object' && Array.isArray((net as NetworkRecord).veth)) writeNetworkRecord(dir, net as NetworkRecord);
    this.runtime.state.write(rec as unknown as ContainerRecord);
    this.recovery.restoredRecords.push(id);
  }

  private isAlive(id: string): boolean {
    try {
      const rec = this.runtime.state.read(id);
      return isSameProcess(rec.pid, BigInt(rec.pidStartTime));
    } catch {
      return false;
    }
  }

  /** An actor for a container the log knows, entering its current state (watchers start on entry). */
  private adopt(id: string, st: LifecycleState): ContainerActor {
    const actor = createActor(this.machine(), { input: { id, state: st.value, context: st.context }, ...(this.inspect ? { inspect: this.inspect } : {}) });
    this.actors.set(id, actor);
    actor.start();
    return actor;
  }

  private drop(id: string): void {
    const a = this.actors.get(id);
    this.actors.delete(id);
    a?.stop();
  }

  /** The machine with this supervisor's actors, built once (provide() costs ~1.7 ms and ~30 KB of heap a call). */
  private provided?: typeof containerMachine;

  private machine(): typeof containerMachine {
    return (this.provided ??= this.buildMachine());
  }

  /** The machine with this supervisor's actors: the kernel side of each state. */
  private buildMachine(): typeof containerMachine {
    return containerMachine.provide({
      actors: {
        watchExit: fromCallback<ContainerEvent, { id: string; pid?: number }>(({ input }) => {
          // Aborted when the state is left or the supervisor stops: the pidfd wait ends, so it holds no event loop open.
          const ac = new AbortController();
          void this.watchExit(input.id, ac.signal);
          return () => ac.abort();
        }),
        watchOom: fromCallback<ContainerEvent, { id: string; pid?: number }>(({ input }) => {
          try {
            return this.cgroups.watchOom(input.id, () => void this.recorder.tryRecord(input.id, 'oom', {}));
          } catch {
            return () => {};
          }
        }),
        create: fromPromise<{ pid: number }, { id: string }>(async () => {
          throw new Error('containers are created through Supervisor.create');
        }),
      },
    });
  }

  /**
   * Follow a container's exit. As its parent (it was created here) the exit code is known; otherwise
   * (adopted after a restart) only the fact of the exit is.
   */
  private async watchExit(id: string, abort: AbortSignal): Promise<void> {
    const stopped = () => abort.aborted;
    try {
      const followed = this.runtime.followedInit(id);
      if (followed) {
        const st = await followed.exited;
        if (stopped()) return;
        await this.runtime.recordExit(id, st);
        return;
      }
      const rec = this.runtime.state.read(id);
      let pidfd = -1;
      try {
        pidfd = openPidfd(rec.pid, BigInt(rec.pidStartTime));
      } catch (e) {
        // Gone before the watch began (a short-lived container started by a CLI verb): the exit is still a fact.
        if (!isNoSuchProcess(e)) throw e;
      }
      if (pidfd >= 0) await waitPidfd(pidfd, undefined, abort);
      if (!stopped()) await this.recorder.tryRecord(id, 'exit', { exitCode: null, signal: null, unknown: true, reason: pidfd >= 0 ? 'adopted: not our child' : 'gone before it was watched' });
    } catch (e) {
      if (!stopped() && !(e instanceof RuntimeError)) {
        this.onError(e as Error);
        await this.recorder.tryRecord(id, 'error', { message: (e as Error).message, step: 'watch-exit' });
      }
    }
  }

  /** Refuse a command the container's machine cannot take now. */
  private check(id: string, ev: ContainerEvent): void {
    const a = this.actors.get(id);
    if (!a) throw new LifecycleError('ContainerNotExists', `container ${id} does not exist`);
    const snap = a.getSnapshot();
    if (!snap.can(ev)) throw refusal(id, snap.value as ContainerStateName, ev);
  }

  /** Create a container from a bundle (parked before its process runs). */
  async create(id: string, opts: CreateOptions): Promise<void> {
    if (this.actors.has(id)) throw new LifecycleError('IdInUse', `container with id exists: ${id}`);
    await this.runtime.create(id, opts);
    // The `create` event adopted it already (delivered as it was appended); make sure.
    if (!this.actors.has(id)) this.adopt(id, await this.recorder.stateOf(id));
  }

  /** The machine context of a container (pid, exit, oom count, ...). */
  contextOf(id: string): ContainerContext | undefined {
    return this.actors.get(id)?.getSnapshot().context;
  }

  /** Start a created container. */
  async start(id: string): Promise<void> {
    this.check(id, { type: 'start' });
    await this.runtime.start(id);
  }

  /** Signal its init. */
  async kill(id: string, signal = 15): Promise<void> {
    this.check(id, { type: 'kill', signal });
    await this.runtime.kill(id, signal);
  }

  /** Freeze. */
  async pause(id: string): Promise<void> {
    this.check(id, { type: 'pause' });
    await this.runtime.pause(id);
  }

  /** Thaw. */
  async resume(id: string): Promise<void> {
    this.check(id, { type: 'resume' });
    await this.runtime.resume(id);
  }

  /** Destroy (force: kill a live one first). */
  async destroy(id: string, opts: { force?: boolean } = {}): Promise<void> {
    this.check(id, { type: 'destroy', force: opts.force });
    await this.runtime.delete(id, opts);
  }

  /** The machine state of a container. */
  stateOf(id: string): ContainerStateName {
    const a = this.actors.get(id);
    if (!a) throw new LifecycleError('ContainerNotExists', `container ${id} does not exist`);
    return a.getSnapshot().value as ContainerStateName;
  }

  /** Ids of the containers it supervises. */
  ids(): string[] {
    return [...this.actors.keys()].sort();
  }

  /** Wait until a container reaches one of `states`. */
  waitFor(id: string, states: ContainerStateName[], timeoutMs = 30_000): Promise<ContainerStateName> {
    const a = this.actors.get(id);
    if (!a) return Promise.reject(new LifecycleError('ContainerNotExists', `container ${id} does not exist`));
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = a.getSnapshot().value as ContainerStateName;
        if (states.includes(v)) {
          sub.unsubscribe();
          clearTimeout(timer);
          resolve(v);
        }
      };
      const sub = a.subscribe({ next: check, error: () => {} });
      const timer = setTimeout(() => {
        sub.unsubscribe();
        reject(new LifecycleError('SystemError', `container ${id}: not ${states.join('/')} within ${timeoutMs} ms`));
      }, timeoutMs);
      check();
    });
  }

  /** Events as an Observable. */
  events$(filter: EventFilter = {}): Observable<CordonEvent> {
    return events$(this.store, filter);
  }

  /** Stop following (containers keep running). */
  async stop(): Promise<void> {
    this.unsubscribe();
    for (const id of [...this.actors.keys()]) {
      this.drop(id);
      // Containers this process created keep running, but their handles must stop polling (else the process can never exit).
      this.runtime.followedInit(id)?.handle.detach();
    }
    this.recorder.close();
    // The next start (or CLI verb) reads only what is appended after this point (not worth a file for a few records).
    if (this.store instanceof JournalStore) this.store.snapshot(128);
    await this.outbox?.stop();
    if (this.ownsStore) await this.store.close();
  }
}
