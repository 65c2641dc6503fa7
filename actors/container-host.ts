/**
 * The containers of one state root as xstate actors: the one lifecycle path every door takes (a CLI process,
 * the library, a NATS command, the control socket). A verb goes door → the container's actor (the one this
 * process holds, or one rebuilt from the log — reconciled with the kernel first — when it holds none) → the
 * machine, which alone decides whether the command is legal → the operation's invoked actor (actors/verbs/,
 * a file per verb) → kernel, the fact appended before the actor resolves → the machine settles where the
 * log now has the container → the door reports. Facts other processes append reach held actors through the
 * log's subscription, so a supervisor's machines show every transition whichever door caused it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Actor, type InspectionEvent, type Observer, createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { LifecycleError } from '../errors/index.js';
import type { CordonEvent } from '../events/schema.js';
import type { EventStore } from '../events/store.js';
import { JournalStore } from '../events/journal.js';
import { type ContainerInit, type ExitStatus, isSameProcess } from '../kernel/index.js';
import { idInUse, notExists, refusal } from '../machines/commands.js';
import { type ContainerCommand, type ContainerStateName, type MachineEvent, type OpInput, type OpOutcome, SETTLED_STATES, type ContainerMachine, containerMachineWith, settledState } from '../machines/container.js';
import { type ExecMachine, type ExecStarted, execMachineWith } from '../machines/exec.js';
import type { CommandSpec } from '../machines/lifecycle.js';
import { startsLife } from '../machines/replay.js';
import { type ContainerLock, ContainerLocks, type Intent } from './container-lock.js';
import { type CrashPoint, crashPoint } from './crash-points.js';
import { toLifecycleError } from './errors.js';
import { EventRecorder, type LoggedState, defaultHostId, openRecorderJournal } from './event-recorder.js';
import { type Reconciled, reconcile } from './reconcile.js';
import { StateRoot } from './state-dir.js';
import { StateCorruptError, isDamagedState } from './state-file.js';
import type { UpdateParams } from './verbs/cgroups.js';
import type { CheckpointParams, CheckpointResult, RestoreParams, RestoreResult } from './verbs/criu-plan.js';
import type { VerbContext } from './verbs/context.js';
import type { CreateRequest, CreatedContainer } from './verbs/create.js';
import type { DestroyParams } from './verbs/destroy.js';
import type { ExecParams, StartedExec } from './verbs/exec.js';
import type { KillParams } from './verbs/signal.js';

/**
 * The verbs' modules, loaded when a verb first runs: a CLI process that pauses a container loads the freezer
 * code, not the bundle validation and spawn engine that create needs.
 */
const VERBS = {
  cgroups: () => import('./verbs/cgroups.js'),
  checkpoint: () => import('./verbs/checkpoint.js'),
  criuPlan: () => import('./verbs/criu-plan.js'),
  restore: () => import('./verbs/restore.js'),
  create: () => import('./verbs/create.js'),
  destroy: () => import('./verbs/destroy.js'),
  exec: () => import('./verbs/exec.js'),
  signal: () => import('./verbs/signal.js'),
  start: () => import('./verbs/start.js'),
  watch: () => import('./verbs/watch.js'),
};

/** Options of ContainerHost.open. */
export interface ContainerHostOptions {
  /** State root (default /run/cordon): container state dirs and, for the embedded store, events.journal. */
  root?: string;
  /** Event store (default: the embedded journal in the root). */
  store?: EventStore;
  /** Host id on events (default CORDON_HOST or the hostname). */
  host?: string;
  /**
   * Whose exits and OOM kills this process watches: every container it holds (a supervisor, the library),
   * or only the inits it created itself and waits for (a CLI verb, which exits when its verb is done).
   */
  watch?: 'all' | 'own';
  /** xstate's `inspect` for every container actor (and its exec children). */
  inspect?: Observer<InspectionEvent>;
  /** Conditions a verb tolerated (a poststop hook that failed, a config accepted with a note). */
  onWarning?: (message: string) => void;
  /** Failures nobody waits for (a watcher that could not record an exit): for logging. */
  onError?: (e: Error) => void;
}

/** A container's actor. */
export type ContainerActor = Actor<ContainerMachine>;

/** What an operation's door and its actor share: the parameters in, the result or error out. */
interface Ticket {
  params?: unknown;
  output?: unknown;
  error?: LifecycleError;
}

/** A running exec started through a host. */
export interface ExecHandle {
  execId: string;
  /** Host pid. */
  pid: number;
  /** Its machine (machines/exec.ts), a child of the container's. */
  actor: Actor<ExecMachine>;
  /** Resolves once it exited and its exec-exit fact is recorded. */
  exited: Promise<{ exitCode: number | null; signal: number | null }>;
  /** Stop following it: this process may exit while it runs on (its exit is then not recorded here). */
  detach(): void;
  /** Signal it (false once it is gone). */
  kill(signal: number): boolean;
  /** With a terminal and no console socket: the pty master (the caller's to drive and close). */
  ptyMaster?: number;
}

const SETTLED: readonly string[] = SETTLED_STATES;

/** A restore under a new id: the machine's `creating` step restores images instead of building from scratch. */
class FreshRestore {
  constructor(readonly params: RestoreParams & { bundle: string }) {}
}
const LIVE = new Set(['created', 'running', 'paused']);

/** The state name of a container actor's snapshot. */
export function stateOfActor(a: ContainerActor): string {
  return String(a.getSnapshot().value);
}

/** The containers of one state root, each an actor whose machine drives every verb. */
export class ContainerHost implements VerbContext {
  readonly state: StateRoot;
  readonly recorder: EventRecorder;
  readonly store: EventStore;
  readonly followed = new Map<string, ContainerInit>();
  /** One verb at a time per container, across processes; each verb's intent (actors/container-lock.ts). */
  readonly locks: ContainerLocks;
  /** The lock this process's verb holds, per container. */
  private readonly locked = new Map<string, ContainerLock>();
  private readonly actors = new Map<string, ContainerActor>();
  private readonly loading = new Map<string, Promise<ContainerActor>>();
  private readonly tickets = new Map<number, Ticket>();
  private readonly execs = new Map<number, StartedExec>();
  private nextOp = 0;
  private provided?: ContainerMachine;
  private unsubscribe: () => void = () => {};
  private closed = false;

  private constructor(
    root: string,
    store: EventStore,
    private readonly ownsStore: boolean,
    private readonly opts: ContainerHostOptions,
  ) {
    this.state = new StateRoot(root);
    this.locks = new ContainerLocks(this.state.root);
    this.store = store;
    this.recorder = new EventRecorder(store, opts.host ?? defaultHostId());
  }

  /** Open a state root: its log read (from the journal's snapshot and tail), nothing adopted yet. */
  static async open(opts: ContainerHostOptions = {}): Promise<ContainerHost> {
    const root = opts.root ?? '/run/cordon';
    fs.mkdirSync(root, { recursive: true, mode: 0o711 });
    const store = opts.store ?? openRecorderJournal(path.join(root, 'events.journal'), opts.onWarning);
    const h = new ContainerHost(root, store, !opts.store, opts);
    try {
      await h.recorder.load();
    } catch (e) {
      if (!opts.store) await store.close();
      throw toLifecycleError(e);
    }
    // Registered after the recorder's own subscription: when this runs, the recorder has folded the event.
    h.unsubscribe = store.subscribe((e) => h.logged(e));
    return h;
  }

  /** The host id on events. */
  get host(): string {
    return this.recorder.host;
  }

  /** A tolerated condition, for the caller to hear about. */
  warn(message: string): void {
    this.opts.onWarning?.(message);
  }

  private reportError(e: unknown): void {
    this.opts.onError?.(toLifecycleError(e));
  }

  // ---- actors ----------------------------------------------------------------------------------------------

  /** The actor this process holds for `id`, if any. */
  held(id: string): ContainerActor | undefined {
    return this.actors.get(id);
  }

  /** Ids of the containers whose actors this process holds. */
  ids(): string[] {
    return [...this.actors.keys()].sort();
  }

  /**
   * The container's actor: the one held, or one rebuilt from the log after the log was made to agree with the
   * kernel. ContainerNotExists when the log has no live container of that id.
   */
  async actor(id: string): Promise<ContainerActor> {
    this.state.dir(id); // InvalidIdFormat before anything else
    const held = this.actors.get(id);
    if (held) return held;
    let p = this.loading.get(id);
    if (!p) {
      p = (async () => {
        if (this.store instanceof JournalStore) this.store.refresh(); // another process's appends, now
        const { logged } = await reconcile(this, id);
        if (settledState(logged.state.value) === 'destroyed') throw notExists(id);
        return this.actors.get(id) ?? this.adopt(id, logged);
      })().finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }

  /** Reconcile container `id` with the kernel and hold its actor (a supervisor's recovery). */
  async recover(id: string): Promise<Reconciled[]> {
    const { logged, found } = await reconcile(this, id);
    if (settledState(logged.state.value) !== 'destroyed' && !this.actors.has(id)) this.adopt(id, logged);
    return found;
  }

  /** An actor for a container the log knows, entering its state there (its watchers start on entry). */
  adopt(id: string, logged: LoggedState): ContainerActor {
    const actor = createActor(this.machine(), { input: { id, state: logged.state.value, context: logged.state.context, seq: logged.seq }, ...(this.opts.inspect ? { inspect: this.opts.inspect } : {}) });
    this.actors.set(id, actor);
    actor.start();
    return actor;
  }

  private drop(id: string): void {
    const a = this.actors.get(id);
    this.actors.delete(id);
    a?.stop();
  }

  /** A fact in the log (this process's or another's): a held actor that is settled catches up with it. */
  private logged(e: CordonEvent): void {
    if (this.closed) return;
    const a = this.actors.get(e.containerId);
    if (!a) {
      // A container another process created (or restored under a new id) next to a supervisor: supervise it.
      if (this.opts.watch === 'all' && startsLife(e) && !this.recorder.isOwn(e.id) && !this.loading.has(e.containerId)) {
        const s = this.recorder.logged(e.containerId);
        if (settledState(s.state.value) !== 'destroyed') this.adopt(e.containerId, s);
      }
      return;
    }
    this.catchUp(e.containerId, e.action);
  }

  /** Send a settled actor the log's state when the log is ahead of it (an operation settles from the log itself). */
  private catchUp(id: string, action: string): void {
    const a = this.actors.get(id);
    if (!a) return;
    const snap = a.getSnapshot();
    if (SETTLED.includes(String(snap.value))) {
      const s = this.recorder.logged(id);
      if (s.seq > snap.context.seq) a.send({ type: 'fact', action, ...s });
    }
    if (a.getSnapshot().value === 'destroyed') this.drop(id);
  }

  // ---- verbs -----------------------------------------------------------------------------------------------

  /** Create a container from a bundle: its machine goes creating → created. */
  async create(id: string, req: CreateRequest): Promise<CreatedContainer> {
    this.state.dir(id);
    return this.withLock(id, async (lock) => (await this.createLocked(id, req, lock)) as CreatedContainer);
  }

  /** Checkpoint a running or paused container with CRIU (runc's checkpoint): it is `checkpointed` after, unless it is left running. */
  async checkpoint(id: string, p: CheckpointParams = {}): Promise<CheckpointResult> {
    (await VERBS.criuPlan()).commonOptions(p, '/'); // flags CRIU cannot take: refused before the machine
    return (await this.command(id, { type: 'checkpoint' }, p)) as CheckpointResult;
  }

  /**
   * Restore a checkpointed container (checkpointed → running), or — an id the log does not have, with
   * `p.bundle` — a new container from images and a bundle (its machine is born running: creating → running).
   */
  async restore(id: string, p: RestoreParams = {}): Promise<RestoreResult> {
    this.state.dir(id);
    (await VERBS.criuPlan()).commonOptions(p, '/');
    return this.withLock(id, async (lock) => {
      if (settledState(this.recorder.logged(id).state.value) !== 'destroyed' || this.actors.has(id)) return (await this.dispatchLocked(id, { type: 'restore' }, p, lock)).output as RestoreResult;
      if (p.bundle === undefined) throw new LifecycleError('ContainerNotExists', `container does not exist: ${id} (restore under a new id needs its bundle: -b BUNDLE)`);
      return (await this.createLocked(id, new FreshRestore({ ...p, bundle: p.bundle }), lock)) as RestoreResult;
    });
  }

  private async createLocked(id: string, req: CreateRequest | FreshRestore, lock: ContainerLock): Promise<unknown> {
    const logged = this.recorder.logged(id);
    if (this.actors.has(id) || this.loading.has(id) || settledState(logged.state.value) !== 'destroyed' || this.state.exists(id)) {
      throw idInUse(id, this.actors.has(id) ? stateOfActor(this.actors.get(id) as ContainerActor) : undefined);
    }
    const verb = req instanceof FreshRestore ? 'restore' : 'create';
    const pidFile = req instanceof FreshRestore ? req.params.pidFile : req.pidFile;
    lock.begin(verb, logged.seq, { ...(pidFile ? { pidFile } : {}), ...(verb === 'restore' ? { fresh: true } : {}) });
    crashPoint(`${verb}:intent`);
    const op = ++this.nextOp;
    const t: Ticket = { params: req };
    this.tickets.set(op, t);
    const actor = createActor(this.machine(), { input: { id, op, seq: logged.seq }, ...(this.opts.inspect ? { inspect: this.opts.inspect } : {}) });
    this.actors.set(id, actor);
    try {
      actor.start();
      await this.settled(actor, op, t);
      crashPoint(`${verb}:done`);
    } catch (e) {
      if (this.actors.get(id) === actor) this.drop(id);
      throw e;
    } finally {
      this.tickets.delete(op);
      // Done or undone by the builder: nothing is left for a recovery to do.
      lock.clear();
    }
    return t.output;
  }

  /** Send a command to a container's machine and wait for the operation's outcome (its output, or its error). */
  async command(id: string, spec: CommandSpec, params?: unknown): Promise<unknown> {
    return (await this.dispatch(id, spec, params)).output;
  }

  private dispatch(id: string, spec: CommandSpec, params?: unknown): Promise<{ op: number; actor: ContainerActor; output: unknown }> {
    this.state.dir(id); // InvalidIdFormat before any lock file is named after it
    return this.withLock(id, (lock) => this.dispatchLocked(id, spec, params, lock));
  }

  /** The verb under the container's lock: the machine decides on the log as it is now, the intent is written, the actor works. */
  private async dispatchLocked(id: string, spec: CommandSpec, params: unknown, lock: ContainerLock): Promise<{ op: number; actor: ContainerActor; output: unknown }> {
    const a = await this.actor(id);
    await this.syncWithKernel(id);
    this.catchUp(id, 'log'); // another process's fact, appended before we held the lock
    const op = ++this.nextOp;
    const ev: ContainerCommand = { ...spec, op };
    const snap = a.getSnapshot();
    if (!snap.can(ev)) throw refusal(id, String(snap.value), spec);
    const verb = spec.type === 'destroy' ? 'delete' : spec.type;
    const t: Ticket = { params };
    this.tickets.set(op, t);
    lock.begin(verb, this.recorder.logged(id).seq);
    try {
      crashPoint(`${verb}:intent` as CrashPoint);
      const done = this.settled(a, op, t);
      a.send(ev);
      await done;
      crashPoint(`${verb}:done` as CrashPoint);
    } catch (e) {
      this.tickets.delete(op);
      this.catchUp(id, 'log');
      await this.recoverFailed(id, lock, e);
      throw e;
    } finally {
      this.tickets.delete(op);
      this.catchUp(id, 'log');
    }
    lock.clear();
    return { op, actor: a, output: t.output };
  }

  /**
   * A verb that failed midway (after some of its effects, or its fact, were done) is finished or undone as a
   * dead process's would be, so the log and the kernel agree before the error is reported. A recovery that
   * fails too keeps the intent for the next process and says so in the error.
   */
  private async recoverFailed(id: string, lock: ContainerLock, e: unknown): Promise<void> {
    const intent = lock.current();
    if (!intent) return;
    // Its first fact could not be appended: it did nothing, or undid what it did (the verbs' own rule).
    if (e instanceof LifecycleError && e.code === 'EventLogFailed' && this.recorder.logged(id).seq === intent.seq) {
      lock.clear();
      return;
    }
    try {
      await (await import('./intent-recovery.js')).recoverIntent(this, id, intent);
      lock.clear();
      this.catchUp(id, 'recovered');
    } catch (re) {
      if (e instanceof Error) e.message += ` (and making the log and the kernel agree afterwards failed: ${(re as Error).message}; the next cordon process retries)`;
    }
  }

  /**
   * Run `f` holding container `id`'s lock: first the log is read up to now and a verb a dead process left
   * midway is finished or undone, and what is left of a container the log does not have is removed (so an id
   * is never stuck). The lock file goes with the container.
   */
  private async withLock<T>(id: string, f: (lock: ContainerLock) => Promise<T>): Promise<T> {
    const lock = await this.locks.acquire(id);
    this.locked.set(id, lock);
    try {
      if (this.store instanceof JournalStore) this.store.refresh();
      await this.recoverLocked(id, lock);
      return await f(lock);
    } finally {
      this.locked.delete(id);
      lock.release(settledState(this.recorder.logged(id).state.value) === 'destroyed' && !this.state.exists(id) && !this.actors.has(id));
    }
  }

  /** Under the lock: a dead verb's intent recovered, leftovers of a container the log does not have removed. */
  private async recoverLocked(id: string, lock: ContainerLock): Promise<void> {
    const left = lock.leftover();
    if (left) {
      const outcome = await (await import('./intent-recovery.js')).recoverIntent(this, id, left);
      this.warn(`container ${id}: ${left.verb} by cordon process ${left.pid} (since ${left.time}) was interrupted; ${outcome}`);
      lock.clear();
      this.catchUp(id, 'recovered');
    }
    if (settledState(this.recorder.logged(id).state.value) === 'destroyed' && !this.actors.has(id) && this.state.exists(id)) {
      await (await VERBS.destroy()).removeLeftovers(this, id);
    }
  }

  /**
   * Finish or undo every verb a dead process left midway under this root (a crashed CLI, a killed daemon);
   * verbs in progress in live processes are left alone. Returns the ids recovered.
   */
  async recoverAbandoned(): Promise<string[]> {
    const done: string[] = [];
    for (const id of this.locks.pending()) {
      const lock = this.locks.tryAcquire(id);
      if (!lock) continue; // a verb in progress
      this.locked.set(id, lock);
      try {
        if (this.store instanceof JournalStore) this.store.refresh();
        if (lock.leftover()) {
          await this.recoverLocked(id, lock);
          done.push(id);
        }
      } catch (e) {
        // Left for the next process (a full disk, a damaged state file): one container does not stop the others.
        this.warn(`container ${id}: a verb a dead process left midway could not be finished yet: ${(e as Error).message}`);
      } finally {
        this.locked.delete(id);
        lock.release(settledState(this.recorder.logged(id).state.value) === 'destroyed' && !this.state.exists(id) && !this.actors.has(id));
      }
    }
    return done;
  }

  /** Add what a verb learnt (paths it is about to make, a pid) to its intent. */
  noteIntent(id: string, data: Record<string, unknown>): void {
    this.locked.get(id)?.note(data);
  }

  /**
   * Before the machine decides: a container the log has live whose init is gone (an exit no watcher has
   * recorded yet) gets its exit recorded first — with its code when this process is the init's parent — so
   * the machine decides on what the kernel says, as runc's status check does.
   */
  private async syncWithKernel(id: string): Promise<void> {
    if (!LIVE.has(this.recorder.logged(id).state.value)) return;
    const rec = this.state.read(id);
    if (rec && isSameProcess(rec.pid, BigInt(rec.pidStartTime))) return;
    const init = this.followed.get(id);
    if (init && rec && init.pid === rec.pid) await (await VERBS.watch()).recordInitExit(this, id, await init.exited, init.pid);
    else await reconcile(this, id);
    this.catchUp(id, 'exit');
  }

  /** Wait for the machine to settle operation `op`; throw its error. */
  private async settled(a: ContainerActor, op: number, t: Ticket): Promise<void> {
    const s = await waitFor(a, (x) => x.context.result?.op === op, { timeout: Number.POSITIVE_INFINITY });
    if (t.error) throw t.error;
    const r = s.context.result;
    if (r && !r.ok) throw new LifecycleError((r.error?.code ?? 'SystemError') as LifecycleError['code'], r.error?.message ?? 'operation failed');
  }

  /**
   * create + start in this process, wait for the init's exit (this process is its parent: the code is known
   * and recorded), delete it, and return how it ended. `attach` wires signals or a terminal to it while it runs.
   */
  async run(id: string, req: CreateRequest, attach?: (c: CreatedContainer) => () => void): Promise<ExitStatus> {
    const created = await this.create(id, req);
    try {
      await this.start(id);
    } catch (e) {
      await this.destroy(id, { force: true }).catch(() => {});
      throw e;
    }
    let detach = attach?.(created);
    try {
      const status = await created.init.exited;
      detach?.();
      detach = undefined;
      // The machine's exit watcher records the exit; delete after it, not beside it.
      await this.waitFor(id, ['stopped', 'destroyed'], 10_000).catch(() => {});
      return status;
    } finally {
      detach?.();
      await this.destroy(id, { force: true });
    }
  }

  /** Start a created container. */
  start(id: string): Promise<void> {
    return this.command(id, { type: 'start' }).then(() => {});
  }

  /** Signal its init (or, with `all`, every process of its cgroups). */
  kill(id: string, signal = 15, opts: { all?: boolean } = {}): Promise<void> {
    const p: KillParams = { signal, all: opts.all };
    return this.command(id, { type: 'kill', signal }, p).then(() => {});
  }

  /** Freeze every process. */
  pause(id: string): Promise<void> {
    return this.command(id, { type: 'pause' }).then(() => {});
  }

  /** Thaw. */
  resume(id: string): Promise<void> {
    return this.command(id, { type: 'resume' }).then(() => {});
  }

  /** Change resource limits. */
  update(id: string, p: UpdateParams): Promise<void> {
    return this.command(id, { type: 'update' }, p).then(() => {});
  }

  /**
   * Remove it (force: kill a running or paused one first). As runc, what is left of a container the log does
   * not have (a crashed create's state dir) is removed too; then only force makes that a success.
   */
  async destroy(id: string, p: DestroyParams = {}): Promise<void> {
    this.state.dir(id);
    await this.withLock(id, async (lock) => {
      // A damaged state.json is written again from the log first, so a forced delete still finds what to remove.
      if (p.force) await (await VERBS.destroy()).repairDamagedState(this, id);
      try {
        await this.dispatchLocked(id, { type: 'destroy', force: p.force }, p, lock);
      } catch (e) {
        if (isDamagedState(e)) throw new StateCorruptError(e.id, e.file, `${e.problem} (delete --force removes it)`);
        // What was left of it (a crashed create's state dir) went when the lock was taken.
        if (!(e instanceof LifecycleError) || e.code !== 'ContainerNotExists' || !p.force) throw e;
      }
    });
  }

  /** Run another process in a running container; resolves once it runs (exec-start recorded). */
  async exec(id: string, p: ExecParams): Promise<ExecHandle> {
    const { op, actor: a, output } = await this.dispatch(id, { type: 'exec' }, p);
    const started = output as StartedExec;
    const child = a.getSnapshot().children[`exec-${op}`] as Actor<ExecMachine> | undefined;
    if (!child) throw new LifecycleError('SystemError', `container ${id}: exec ${started.execId} has no machine`);
    const exited = waitFor(child, (x) => x.status === 'done', { timeout: Number.POSITIVE_INFINITY }).then((x) => ({ exitCode: x.context.exitCode ?? null, signal: x.context.signal ?? null }));
    exited.catch(() => {});
    return { execId: started.execId, pid: started.pid, actor: child, exited, detach: () => { this.execs.delete(op); started.detach(); }, kill: (sig) => started.kill(sig), ptyMaster: started.ptyMaster };
  }

  /** Wait until a container's machine is in one of `states` (ContainerNotExists for one the log has not). */
  async waitFor(id: string, states: ContainerStateName[], timeoutMs = 30_000): Promise<ContainerStateName> {
    const a = this.actors.get(id) ?? (await this.actor(id));
    try {
      const s = await waitFor(a, (x) => states.includes(x.value as ContainerStateName), { timeout: timeoutMs });
      return s.value as ContainerStateName;
    } catch (e) {
      if (states.includes(a.getSnapshot().value as ContainerStateName)) return a.getSnapshot().value as ContainerStateName;
      throw new LifecycleError('Timeout', `container ${id}: not ${states.join('/')} within ${timeoutMs} ms`, { cause: e });
    }
  }

  /** The machine state of a container: its held actor's, else the log's. */
  machineState(id: string): string {
    this.state.dir(id); // InvalidIdFormat
    const a = this.actors.get(id);
    if (a) return String(a.getSnapshot().value);
    const v = settledState(this.recorder.logged(id).state.value);
    if (v === 'destroyed') throw notExists(id);
    return v;
  }

  /** Stop every actor (containers keep running; their inits' handles stop following them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    for (const id of [...this.actors.keys()]) this.drop(id);
    // Containers this process created keep running, but their handles must stop polling (else the process can never exit).
    for (const init of this.followed.values()) init.handle.detach();
    for (const e of this.execs.values()) e.detach();
    this.followed.clear();
    this.execs.clear();
    this.recorder.close();
    if (this.ownsStore) await this.store.close();
  }

  // ---- the machine's actors --------------------------------------------------------------------------------

  private machine(): ContainerMachine {
    return (this.provided ??= this.buildMachine());
  }

  /** Run an operation's kernel work and say where it left the container; errors are kept for the door. */
  private async perform(id: string, op: number, work: (t: Ticket) => Promise<unknown>): Promise<OpOutcome> {
    const t = this.tickets.get(op) ?? {};
    try {
      t.output = await work(t);
    } catch (e) {
      t.error = toLifecycleError(e);
    }
    const s = this.recorder.logged(id);
    return t.error ? { ...s, error: { code: t.error.code, message: t.error.message } } : s;
  }

  private op(work: (input: OpInput, t: Ticket) => Promise<unknown>) {
    return fromPromise<OpOutcome, OpInput>(({ input }) => this.perform(input.id, input.op, (t) => work(input, t)));
  }

  private buildMachine(): ContainerMachine {
    return containerMachineWith({
        create: fromPromise<OpOutcome, { id: string; op: number }>(({ input }) =>
          this.perform(input.id, input.op, async (t) =>
            t.params instanceof FreshRestore
              ? (await VERBS.restore()).restoreFresh(this, input.id, t.params.params)
              : new (await VERBS.create()).ContainerBuilder(this, input.id, (t.params ?? {}) as CreateRequest).build(),
          ),
        ),
        start: this.op(async ({ id }) => (await VERBS.start()).startContainer(this, id)),
        kill: this.op(async ({ id, command }, t) => (await VERBS.signal()).killContainer(this, id, (t.params as KillParams | undefined) ?? { signal: command.signal ?? 15 })),
        pause: this.op(async ({ id }) => (await VERBS.cgroups()).pauseContainer(this, id)),
        resume: this.op(async ({ id }) => (await VERBS.cgroups()).resumeContainer(this, id)),
        update: this.op(async ({ id }, t) => (await VERBS.cgroups()).updateContainer(this, id, t.params as UpdateParams)),
        destroy: this.op(async ({ id, command }) => (await VERBS.destroy()).destroyContainer(this, id, { force: command.force })),
        checkpoint: this.op(async ({ id }, t) => (await VERBS.checkpoint()).checkpointContainer(this, id, (t.params ?? {}) as CheckpointParams)),
        restore: this.op(async ({ id }, t) => (await VERBS.restore()).restoreContainer(this, id, (t.params ?? {}) as RestoreParams)),
        exec: this.execMachine(),
        watchExit: fromCallback<MachineEvent, { id: string }>(({ input, sendBack }) => {
          if (this.opts.watch !== 'all' && !this.followed.has(input.id)) return () => {};
          // Aborted when the state is left or the host closes: the pidfd wait ends, so it holds no event loop open.
          const ac = new AbortController();
          VERBS.watch().then((w) => w.watchInitExit(this, input.id, ac.signal)).then(
            (s) => s && !ac.signal.aborted && sendBack({ type: 'fact', action: 'exit', ...s }),
            (e: unknown) => !ac.signal.aborted && this.watchFailed(input.id, 'watch-exit', e),
          );
          return () => ac.abort();
        }),
        watchOom: fromCallback<MachineEvent, { id: string }>(({ input, sendBack }) => {
          if (this.opts.watch !== 'all') return () => {};
          let stop: (() => void) | undefined;
          let stopped = false;
          VERBS.watch().then(
            (w) => {
              try {
                if (!stopped) stop = w.watchOomKills(this, input.id, (s) => sendBack({ type: 'fact', action: 'oom', ...s }), (e) => this.reportError(e));
              } catch (e) {
                this.reportError(e);
              }
            },
            (e: unknown) => this.reportError(e),
          );
          return () => {
            stopped = true;
            stop?.();
          };
        }),
    });
  }

  /** A watcher that failed: the failure is a fact (an `error` event); one that cannot be recorded is reported. */
  private watchFailed(id: string, step: string, e: unknown): void {
    this.reportError(e);
    this.recorder.record(id, 'error', { message: (e as Error)?.message ?? String(e), step }).catch((le: unknown) => this.reportError(le));
  }

  /** The exec machine with this host's actors: spawn and record, then watch the exit and record it. */
  private execMachine() {
    return execMachineWith({
        start: fromPromise<ExecStarted, { containerId: string; op: number }>(async ({ input }) => {
          const t = this.tickets.get(input.op) ?? {};
          try {
            const e = await (await VERBS.exec()).startExec(this, input.containerId, t.params as ExecParams);
            t.output = e;
            this.execs.set(input.op, e);
            return { execId: e.execId, pid: e.pid, ...this.recorder.logged(input.containerId) };
          } catch (err) {
            t.error = toLifecycleError(err);
            return { ...this.recorder.logged(input.containerId), error: { code: t.error.code, message: t.error.message } };
          }
        }),
        watchExit: fromCallback<{ type: 'exited'; exitCode: number | null; signal: number | null } & LoggedState, { containerId: string; op: number }>(({ input, sendBack }) => {
          const e = this.execs.get(input.op);
          if (!e) return () => {}; // detached
          let stopped = false;
          void e.exited.then(async (st) => {
            if (!this.execs.has(input.op)) return; // detached meanwhile
            this.execs.delete(input.op);
            try {
              await (await VERBS.exec()).recordExecExit(this, input.containerId, e, st);
            } catch (err) {
              this.reportError(err);
            }
            if (!stopped) sendBack({ type: 'exited', exitCode: st.code, signal: st.signal, ...this.recorder.logged(input.containerId) });
          });
          return () => {
            stopped = true;
          };
        }),
    });
  }
}

/** The snapshot type of a container actor. */
export type ContainerSnapshot = ReturnType<ContainerActor['getSnapshot']>;
