/**
 * The library API for platform engineers: `Cordon.open()` (a state dir and an event store) creates and
 * loads containers; a `Container` has create/start/run/signal/pause/resume/processes/stats/state/update/
 * destroy/wait; events are an rxjs Observable; every failure is a LifecycleError with libcontainer's code.
 */
import type { Observable } from 'rxjs';
import { ConfigError } from '../config/config-error.js';
import type { EventFilter } from '../events/observable.js';
import type { CordonEvent } from '../events/schema.js';
import type { EventStore } from '../events/store.js';
import type { NatsOptions } from '../events/nats-connection.js';
import type { CgroupResources } from '../kernel/index.js';
import { SetupError } from '../kernel/index.js';
import type { ExitStatus } from '../kernel/index.js';
import type { ContainerStateName, ExitInfo } from '../machines/container.js';
import { LifecycleError, type LifecycleErrorCode } from '../machines/commands.js';
import type { ContainerStats } from './cgroup-operations.js';
import type { CreateOptions } from './oci-runtime.js';
import { type OciState, RuntimeError } from './state-dir.js';
import { Supervisor } from './supervisor.js';
import { randomUUID } from 'node:crypto';
import { type Actor, createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import { type ExecEvent, execMachine } from '../machines/exec.js';
import type { ExecIo, ExecProcess, ExecRequest } from './exec.js';

/** A running exec: its host pid, exec id (as in the events), machine, and its exit. */
export interface ExecHandle {
  pid: number;
  execId: string;
  actor: Actor<typeof execMachine>;
  exited: Promise<{ exitCode: number | null; signal: number | null }>;
  /** With `tty` and no console socket: the pty master made in the container (the caller's to drive and close). */
  ptyMaster?: number;
}

export { LifecycleError };
export type { LifecycleErrorCode };

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
}

const RUNTIME_CODES: Record<RuntimeError['code'], LifecycleErrorCode> = {
  exists: 'IdInUse',
  'bad-id': 'InvalidIdFormat',
  'not-found': 'ContainerNotExists',
  'bad-state': 'ContainerNotRunning',
  io: 'SystemError',
};

/** Any error as a LifecycleError with a code (config problems are ConfigInvalid, kernel failures SystemError). */
export function asLifecycleError(e: unknown): LifecycleError {
  if (e instanceof LifecycleError) return e;
  if (e instanceof RuntimeError) return Object.assign(new LifecycleError(RUNTIME_CODES[e.code], e.message), { cause: e });
  if (e instanceof ConfigError || e instanceof SetupError) return Object.assign(new LifecycleError('ConfigInvalid', (e as Error).message), { cause: e });
  return Object.assign(new LifecycleError('SystemError', e instanceof Error ? e.message : String(e)), { cause: e });
}

async function typed<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw asLifecycleError(e);
  }
}

/** One container. */
export class Container {
  constructor(
    readonly id: string,
    private readonly cordon: Cordon,
  ) {}

  private get sup(): Supervisor {
    return this.cordon.supervisor;
  }

  /** Let the created container run its process. */
  start(): Promise<void> {
    return typed(() => this.sup.start(this.id));
  }

  /** Start and wait for the exit. */
  async run(): Promise<ExitInfo> {
    await this.start();
    return this.wait();
  }

  /** Send a signal to its init (or every process with `all`). */
  signal(signal = 15, opts: { all?: boolean } = {}): Promise<void> {
    return typed(async () => (opts.all ? this.sup.runtime.killAll(this.id, signal) : this.sup.kill(this.id, signal)));
  }

  /** Freeze every process. */
  pause(): Promise<void> {
    return typed(() => this.sup.pause(this.id));
  }

  /** Thaw. */
  resume(): Promise<void> {
    return typed(() => this.sup.resume(this.id));
  }

  /** Host pids of its processes. */
  processes(): Promise<number[]> {
    return typed(() => this.sup.cgroups.pids(this.id));
  }

  /** One statistics sample (cgroups and network interfaces). */
  stats(): Promise<ContainerStats> {
    return typed(() => this.sup.cgroups.stats(this.id));
  }

  /** The machine state and the OCI state. */
  state(): Promise<{ machine: ContainerStateName; oci: OciState }> {
    return typed(() => ({ machine: this.sup.stateOf(this.id), oci: this.sup.runtime.stateOf(this.id) }));
  }

  /** Change its resources. */
  update(resources: CgroupResources): Promise<void> {
    return typed(() => this.sup.runtime.update(this.id, resources));
  }

  /** Remove it (force: kill it first if it runs). */
  destroy(opts: { force?: boolean } = {}): Promise<void> {
    return typed(() => this.sup.destroy(this.id, opts));
  }

  /**
   * Run an additional process in the running container (runc exec): its own machine (machines/exec.ts)
   * goes starting → running → exited, with exec-start and exec-exit events. Resolves once it runs.
   */
  exec(req: ExecRequest, opts: ExecIo = {}): Promise<ExecHandle> {
    return typed(async () => {
      let started: ExecProcess | undefined;
      const machine = execMachine.provide({
        actors: {
          start: fromPromise<{ pid: number }, { containerId: string; execId: string }>(async () => {
            this.sup.stateOf(this.id);
            started = await this.sup.runtime.exec(this.id, req, opts);
            return { pid: started.pid };
          }),
          watchExit: fromCallback<ExecEvent, { containerId: string; execId: string; pid?: number }>(({ sendBack }) => {
            void started?.exited.then((st) => sendBack({ type: 'exited', exitCode: st.code, signal: st.signal }));
            return () => {};
          }),
        },
      });
      const actor = createActor(machine, { input: { containerId: this.id, execId: randomUUID() } }).start();
      const snap = await waitFor(actor, (x) => x.value !== 'starting');
      if (snap.value === 'failed') throw new Error(snap.context.error ?? 'exec failed');
      const done = waitFor(actor, (x) => x.status === 'done').then((x) => ({ exitCode: x.context.exitCode ?? null, signal: x.context.signal ?? null }));
      return { pid: snap.context.pid as number, execId: started?.execId ?? snap.context.execId, actor, exited: done, ptyMaster: started?.ptyMaster };
    });
  }

  /** Resolves when it has stopped, with how it ended. */
  wait(timeoutMs = 24 * 3600_000): Promise<ExitInfo> {
    return typed(async () => {
      await this.sup.waitFor(this.id, ['stopped', 'destroyed'], timeoutMs);
      const exit = this.sup.contextOf(this.id)?.exit;
      return exit ?? { exitCode: null, signal: null, oomKilled: false, unknown: true };
    });
  }

  /** This container's events. */
  events$(filter: Omit<EventFilter, 'containerId'> = {}): Observable<CordonEvent> {
    return this.sup.events$({ ...filter, containerId: this.id });
  }
}

/** A host's containers: the factory of the library API. */
export class Cordon {
  private constructor(readonly supervisor: Supervisor) {}

  /** Open a state directory: replays its events, re-adopts live containers, records exits missed. */
  static async open(opts: CordonOptions = {}): Promise<Cordon> {
    return new Cordon(await typed(() => Supervisor.start(opts)));
  }

  /** Create a container from an OCI bundle; it is parked before its process runs. */
  async create(id: string, opts: CreateOptions): Promise<Container> {
    await typed(() => this.supervisor.create(id, opts));
    return new Container(id, this);
  }

  /** A container the host already has. */
  load(id: string): Container {
    this.supervisor.stateOf(id); // throws ContainerNotExists
    return new Container(id, this);
  }

  /** Ids of all containers. */
  list(): string[] {
    return this.supervisor.ids();
  }

  /** Events of every container. */
  events$(filter: EventFilter = {}): Observable<CordonEvent> {
    return this.supervisor.events$(filter);
  }

  /** Stop supervising (containers keep running; a later open re-adopts them). */
  close(): Promise<void> {
    return this.supervisor.stop();
  }
}

export type { ExitInfo, ExitStatus };
