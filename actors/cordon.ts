/**
 * The library API for platform engineers: `Cordon.open()` (a state dir and an event store) creates and
 * loads containers; a `Container` has start/run/signal/pause/resume/exec/processes/stats/state/update/
 * destroy/wait; events are an rxjs Observable; every failure is a LifecycleError with libcontainer's code.
 * Each verb goes through the container's machine, as from every other door.
 */
import type { Observable } from 'rxjs';
import type { InspectionEvent, Observer } from 'xstate';
import { LifecycleError } from '../errors/index.js';
import type { EventFilter } from '../events/observable.js';
import type { CordonEvent } from '../events/schema.js';
import type { EventStore } from '../events/store.js';
import type { NatsOptions } from '../events/nats-connection.js';
import type { CgroupResources } from '../kernel/index.js';
import type { ContainerStateName, ExitInfo } from '../machines/container.js';
import type { ExecHandle } from './container-host.js';
import { typed } from './errors.js';
import { type ContainerStats, containerPids, containerStats, ociStateOrCheckpointed } from './queries.js';
import type { OciState } from './state-dir.js';
import { type RecoveryReport, Supervisor } from './supervisor.js';
import type { CreateOptions } from './verbs/create.js';
import type { CheckpointParams, CheckpointResult, RestoreParams, RestoreResult } from './verbs/criu-plan.js';
import type { ExecRequest } from './verbs/exec.js';
import { notRunning } from '../machines/commands.js';

/** Options of Cordon.open. */
export interface CordonOptions {
  /** State directory (default /run/cordon). */
  root?: string;
  /** Event store (default: the embedded journal in the state directory). */
  store?: EventStore;
  /** Host id on events. */
  host?: string;
  /** Also forward events to JetStream (SupervisorOptions.nats: outbox, host lease, restore). */
  nats?: NatsOptions;
  /** xstate's `inspect` for every container's machine (actors/inspection.ts gives one for the Stately inspector and NATS). */
  inspect?: Observer<InspectionEvent>;
  /** Conditions a verb tolerated (a config accepted with a note, a poststop hook that failed). */
  onWarning?: (message: string) => void;
  /** Failures nobody waits for (a watcher that could not record an exit). */
  onError?: (e: Error) => void;
}

/** Options of Container.exec: the process (runc exec's overrides of the container's own) and its stdio. */
export interface ExecOptions extends Omit<ExecRequest, 'tty' | 'consoleSize'> {
  /** Fds for its stdin, stdout, stderr (default: this process's). */
  stdio?: readonly [number, number, number];
  /** A terminal: a pty made in the container, its master handed to this unix socket (SCM_RIGHTS) or returned as `ptyMaster`. */
  tty?: boolean | { consoleSocket?: string; height?: number; width?: number };
}

/** One container. */
export class Container {
  readonly #sup: Supervisor;

  /** A handle on container `id` of `cordon` (use Cordon.create or Cordon.load). */
  constructor(
    readonly id: string,
    cordon: Cordon,
  ) {
    this.#sup = supervisorOf(cordon);
  }

  /** Let the created container run its process. */
  start(): Promise<void> {
    return typed(() => this.#sup.start(this.id));
  }

  /** Start and wait for the exit. */
  async run(): Promise<ExitInfo> {
    await this.start();
    return this.wait();
  }

  /** Send a signal to its init (or every process with `all`). */
  signal(signal = 15, opts: { all?: boolean } = {}): Promise<void> {
    return typed(() => this.#sup.kill(this.id, signal, opts));
  }

  /** Freeze every process. */
  pause(): Promise<void> {
    return typed(() => this.#sup.pause(this.id));
  }

  /** Thaw. */
  resume(): Promise<void> {
    return typed(() => this.#sup.resume(this.id));
  }

  /** Host pids of its processes. */
  processes(): Promise<number[]> {
    return typed(() => containerPids(this.#live('list processes of'), this.id));
  }

  /** One statistics sample (cgroups and network interfaces). */
  stats(): Promise<ContainerStats> {
    return typed(() => containerStats(this.#live('get stats of'), this.id));
  }

  /** The machine state and the OCI state (status `checkpointed`, pid 0, for a checkpointed container). */
  state(): Promise<{ machine: ContainerStateName; oci: Omit<OciState, 'status'> & { status: OciState['status'] | 'checkpointed' } }> {
    return typed(() => ({ machine: this.#sup.stateOf(this.id), oci: ociStateOrCheckpointed(this.#sup.containers.state, this.id) }));
  }

  /**
   * Checkpoint it with CRIU (runc checkpoint): its images go to `opts.imagePath` (default ./checkpoint); without
   * `leaveRunning` it is `checkpointed` afterwards (no process, no cgroups) until {@link Cordon.restore}.
   */
  checkpoint(opts: CheckpointParams = {}): Promise<CheckpointResult> {
    return typed(() => this.#sup.containers.checkpoint(this.id, opts));
  }

  /** Change its resources. */
  update(resources: CgroupResources): Promise<void> {
    return typed(() => this.#sup.containers.update(this.id, { resources }));
  }

  /** Remove it (force: kill it first if it runs). */
  destroy(opts: { force?: boolean } = {}): Promise<void> {
    return typed(() => this.#sup.destroy(this.id, opts));
  }

  /**
   * Run an additional process in the running container (runc exec): its own machine (machines/exec.ts)
   * goes starting → running → exited, with exec-start and exec-exit events. Resolves once it runs.
   */
  exec(opts: ExecOptions): Promise<ExecHandle> {
    const { stdio, tty, ...request } = opts;
    const t = typeof tty === 'object' ? tty : tty ? {} : undefined;
    return typed(() =>
      this.#sup.containers.exec(this.id, {
        request: { ...request, tty: t !== undefined, ...(t?.height && t.width ? { consoleSize: { height: t.height, width: t.width } } : {}) },
        io: { stdio, consoleSocket: t?.consoleSocket },
      }),
    );
  }

  /** Resolves when it has stopped, with how it ended. */
  wait(timeoutMs = 24 * 3600_000): Promise<ExitInfo> {
    return typed(async () => {
      const actor = this.#sup.actorOf(this.id);
      await this.#sup.waitFor(this.id, ['stopped', 'destroyed'], timeoutMs);
      const exit = (actor?.getSnapshot().context ?? this.#sup.contextOf(this.id))?.exit;
      return exit ?? { exitCode: null, signal: null, oomKilled: false, unknown: true };
    });
  }

  /** This container's events. */
  events$(filter: Omit<EventFilter, 'containerId'> = {}): Observable<CordonEvent> {
    return this.#sup.events$({ ...filter, containerId: this.id });
  }

  /** The state root after the machine says the container is live (its refusal otherwise). */
  #live(what: string) {
    const s = this.#sup.stateOf(this.id);
    if (s === 'stopped' || s === 'checkpointed') throw notRunning(this.id, s, what);
    return this.#sup.containers.state;
  }
}

const supervisors = new WeakMap<Cordon, Supervisor>();
const supervisorOf = (c: Cordon): Supervisor => {
  const s = supervisors.get(c);
  if (!s) throw new LifecycleError('SystemError', 'Cordon: not open');
  return s;
};

/** A host's containers: the factory of the library API. */
export class Cordon {
  private constructor(sup: Supervisor) {
    supervisors.set(this, sup);
  }

  /** Open a state directory: replays its events, re-adopts live containers, records exits missed. */
  static async open(opts: CordonOptions = {}): Promise<Cordon> {
    return new Cordon(await typed(() => Supervisor.start(opts)));
  }

  /** Create a container from an OCI bundle; it is parked before its process runs. */
  async create(id: string, opts: CreateOptions): Promise<Container> {
    await typed(() => supervisorOf(this).create(id, opts));
    return new Container(id, this);
  }

  /**
   * Restore a checkpointed container from its images (default: where its checkpoint put them), or — an id the
   * host does not have, with `opts.bundle` — a new container from images and a bundle. The supervisor is the
   * restored tree's parent: it records its exit.
   */
  async restore(id: string, opts: RestoreParams = {}): Promise<{ container: Container } & RestoreResult> {
    const r = await typed(() => supervisorOf(this).containers.restore(id, opts));
    return { container: new Container(id, this), ...r };
  }

  /** A container the host already has. */
  load(id: string): Container {
    supervisorOf(this).stateOf(id); // throws ContainerNotExists
    return new Container(id, this);
  }

  /** What opening found: containers re-adopted, recorded as exited while nothing watched, unchanged, with a damaged state file. */
  get recovery(): Readonly<RecoveryReport> {
    const r = supervisorOf(this).recovery;
    return { adopted: [...r.adopted], exitedWhileDown: [...r.exitedWhileDown], unchanged: [...r.unchanged], restoredRecords: [...r.restoredRecords], damaged: [...r.damaged] };
  }

  /** Ids of all containers. */
  list(): string[] {
    return supervisorOf(this).ids();
  }

  /** Events of every container. */
  events$(filter: EventFilter = {}): Observable<CordonEvent> {
    return supervisorOf(this).events$(filter);
  }

  /** Stop supervising (containers keep running; a later open re-adopts them). */
  close(): Promise<void> {
    return supervisorOf(this).stop();
  }
}

export { LifecycleError };
export type { ExecHandle, ExitInfo, RecoveryReport };
