/**
 * The OCI lifecycle on a state root, as runc's verbs: create (the container parked before execve, owned
 * by no cordon process), start (through the exec fifo), state, kill, delete, list, and run. Each verb
 * works from a fresh process; the only shared truth is the state dir and /proc.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadBundle, type LoadedBundle } from '../config/index.js';
import { type ContainerInit, knownSyscall, spawnContainer } from '../kernel/index.js';
import { O, SIGNALS } from '../kernel/index.js';
import { closeFd, mkfifo } from '../kernel/index.js';
import { NAMESPACE_PROC_NAMES } from '../kernel/index.js';
import { type ExitStatus, openPidfd, pidfdSignal, processStartTime, waitPidfd } from '../kernel/index.js';
import { createCgroupManager } from '../kernel/index.js';
import type { CgroupManager, CgroupResources } from '../kernel/index.js';
import { CgroupOperations, cgroupOf } from './cgroup-operations.js';
import type { EventRecorder } from './event-recorder.js';
import { type ExecIo, type ExecProcess, type ExecRequest, execInContainer } from './exec.js';
import { windowSize } from '../kernel/index.js';
import { attachTerminal, forwardSignals, sendToConsoleSocket } from './foreground.js';
import { hooksOf, runHooks } from './hook-runner.js';
import type { NamespaceType } from '../config/index.js';
import { type NetworkConfig, networkPlanOf } from '../config/network.js';
import { type NetworkRecord, networkSummary, openNetns, setupNetwork, teardownNetwork } from './network.js';
import { type ContainerRecord, type OciState, RuntimeError, StateRoot, rfc3339Nano } from './state-dir.js';

/** Options of create and run. */
export interface CreateOptions {
  /** Bundle directory (default: the current directory). */
  bundle?: string;
  /** Write the container's host pid here. */
  pidFile?: string;
  /** Enter the rootfs with MS_MOVE + chroot (runc --no-pivot). */
  noPivot?: boolean;
  /** Fds for the container's stdio (default: this process's 0-2). */
  stdio?: readonly number[];
  /** Fds the container's process gets as 3, 4, ... (runc --preserve-fds N passes the caller's 3..3+N-1). */
  extraFiles?: readonly number[];
  /** Receives config warnings (accepted with a note, as runc logs them). Default: ignored. */
  onWarning?: (message: string) => void;
  /** For process.terminal: a unix socket that receives the pty master (SCM_RIGHTS), as runc --console-socket. */
  consoleSocket?: string;
  /** For process.terminal without a console socket: keep the master here (a foreground run drives it). */
  keepTerminal?: boolean;
  /** The container's network (veth interfaces, CNI); default: the `org.cordon.network` annotation, if any. */
  network?: NetworkConfig;
}

/** A created container still followed by the process that created it. */
export interface CreatedContainer {
  record: ContainerRecord;
  init: ContainerInit;
  bundle: LoadedBundle;
  /** The pty master, when the process has a terminal and no console socket took it. */
  ptyMaster?: number;
  /** What its network setup made (interfaces, CNI result with the addresses), when it has a network. */
  network?: NetworkRecord;
}

/** runc's verbs on one state root. */
export class OciRuntime {
  readonly state: StateRoot;
  /** Inits this process created, by container id: it is their parent and their handles reap them. */
  private readonly followed = new Map<string, ContainerInit>();
  /** Hooks of containers this process created and has not started: start() needs no second parse of config.json. */
  private readonly pendingHooks = new Map<string, Awaited<ReturnType<typeof hooksOf>>>();
  /** Where lifecycle facts are recorded (the event log); none for a bare runtime. */
  readonly recorder?: EventRecorder;
  readonly cgroups: CgroupOperations;

  constructor(root = '/run/cordon', opts: { recorder?: EventRecorder } = {}) {
    this.state = new StateRoot(root);
    this.recorder = opts.recorder;
    this.cgroups = new CgroupOperations(this.state);
  }

  /** The init of a container this process created and still follows (it is the parent: exit codes are known). */
  followedInit(id: string): ContainerInit | undefined {
    return this.followed.get(id);
  }

  /** Record a container's exit (with whether the OOM killer ended it). */
  async recordExit(id: string, st: ExitStatus): Promise<void> {
    if (!this.recorder) return;
    let oomKilled = false;
    try {
      oomKilled = st.signal === SIGNALS.KILL && this.cgroups.oomKills(id) > 0;
    } catch {
      // no cgroups recorded: unknown, false
    }
    // The OOM kill is a fact of its own, logged before the exit, unless a watcher (the daemon) logged one already.
    if (oomKilled && (await this.recorder.stateOf(id)).context.oomEvents === 0) await this.recorder.tryRecord(id, 'oom', { killed: true });
    await this.recorder.tryRecord(id, 'exit', { pid: this.state.read(id).pid, exitCode: st.code, signal: st.signal, oomKilled });
  }

  /**
   * Create a container: validate the bundle, claim the state dir, spawn the init parked at its exec fifo,
   * record it. On any failure nothing is left: the child is killed and the state dir removed.
   */
  async create(id: string, opts: CreateOptions = {}): Promise<CreatedContainer> {
    this.state.dir(id);
    if (this.state.exists(id)) throw new RuntimeError('exists', `container with id exists: ${id}`);
    const bundle = await loadBundle(opts.bundle ?? process.cwd(), { noPivotRoot: opts.noPivot, knownSyscall });
    for (const w of bundle.warnings) opts.onWarning?.(w);
    const logged = this.recorder ? (await this.recorder.stateOf(id)).value : 'creating';
    if (logged !== 'creating' && logged !== 'destroyed') {
      throw new RuntimeError('exists', `container with id exists: ${id} (in the event log)`);
    }
    const network = networkPlanOf(opts.network, bundle.annotations, bundle.setup.namespaces);
    if (bundle.setup.process.terminal && !opts.consoleSocket && !opts.keepTerminal) {
      throw new RuntimeError('bad-state', 'cannot allocate a tty for a container that will be detached without --console-socket');
    }
    const dir = this.state.claim(id);
    let init: ContainerInit | undefined;
    let cgroup: CgroupManager | undefined;
    let fifoFd = -1;
    try {
      // Cgroups first, limits written, so the container joins them (its first steps) before any code of its own runs.
      const cg = createCgroupManager({ id, cgroupsPath: bundle.setup.cgroupsPath });
      cg.create();
      cgroup = cg;
      if (bundle.setup.resources) cg.apply(bundle.setup.resources);
      const fifo = this.state.fifo(id);
      mkfifo(fifo, 0o622);
      fifoFd = fs.openSync(fifo, O.RDWR | O.CLOEXEC);
      // The state a seccomp notify listener receives with the listener fd (runtime-spec ContainerProcessState.state).
      const seccompState = (pid: number) => ({ ociVersion: bundle.spec.ociVersion, id, status: 'creating', pid, bundle: bundle.bundle, ...(Object.keys(bundle.annotations).length ? { annotations: bundle.annotations } : {}) });
      let setup = bundle.setup;
      if (setup.process.terminal && !setup.process.consoleSize && opts.keepTerminal) {
        const ws = windowSize(1);
        if (ws) setup = { ...setup, process: { ...setup.process, consoleSize: { height: ws.rows, width: ws.cols } } };
      }
      const hooks = bundle.hooks;
      const early = [...(hooks.prestart ?? []), ...(hooks.createRuntime ?? []), ...(hooks.createContainer ?? [])];
      const onPrestart = early.length === 0 ? undefined : async (pid: number) => {
        const state = JSON.stringify({ ...seccompState(pid), status: 'creating' });
        // Spec order: prestart (deprecated) and createRuntime in the runtime's namespaces, then createContainer in the container's.
        await runHooks(this.recorder, id, 'prestart', hooks.prestart, state, { kind: 'runtime' });
        await runHooks(this.recorder, id, 'createRuntime', hooks.createRuntime, state, { kind: 'runtime' });
        await runHooks(this.recorder, id, 'createContainer', hooks.createContainer, state, { kind: 'container', pid, namespaces: setup.namespaces.map((n) => n.type) });
      };
      // The init joins its cgroups itself before any setup (clone3 into the v2 cgroup, "0" written to each v1
      // tasks file: no RCU grace period on the start path); at the setup gate it is in them and in its new
      // network namespace: the network goes in there.
      let netRec: NetworkRecord | undefined;
      const onSetup = network ? async (pid: number) => {
        netRec = await setupNetwork(dir, id, pid, network);
      } : undefined;
      init = spawnContainer(setup, { startGate: 'fifo', execFifoFd: fifoFd, stdio: opts.stdio, extraFiles: opts.extraFiles, seccompState, cgroupJoin: cg.joinTargets(), onSetup, onPrestart });
      fs.closeSync(fifoFd);
      fifoFd = -1;
      await init.created;
      const startTime = processStartTime(init.pid);
      if (startTime === undefined) throw new RuntimeError('bad-state', `container ${id} exited during create`);
      const record: ContainerRecord = {
        version: 1,
        id,
        ociVersion: bundle.spec.ociVersion,
        pid: init.pid,
        pidStartTime: String(startTime),
        bundle: bundle.bundle,
        rootfs: bundle.setup.rootfs,
        created: rfc3339Nano(),
        owner: '',
        annotations: bundle.annotations,
        namespaces: bundle.setup.namespaces.map((n) => ({ type: n.type, path: n.path ?? `/proc/${init?.pid}/ns/${NAMESPACE_PROC_NAMES[n.type]}` })),
        cgroupPaths: { ...cg.paths },
        cgroupCreated: [...(cg.created ?? [])],
      };
      this.state.write(record);
      if (opts.pidFile) writePidFile(opts.pidFile, init.pid);
      this.followed.set(id, init);
      this.pendingHooks.set(id, bundle.hooks);
      let ptyMaster = init.ptyMaster;
      if (ptyMaster !== undefined && opts.consoleSocket) {
        // As runc: the master goes to the console socket; no copy stays here.
        const master = ptyMaster;
        ptyMaster = undefined;
        sendToConsoleSocket(opts.consoleSocket, master);
      }
      // The record rides along, so a supervisor whose state dir was lost can rebuild it from the log (restore).
      await this.recorder?.record(id, 'create', { pid: init.pid, bundle: bundle.bundle, record, ...(netRec ? { network: networkSummary(netRec), networkRecord: netRec } : {}) });
      return { record, init, bundle, ptyMaster, network: netRec };
    } catch (e) {
      if (fifoFd >= 0) fs.closeSync(fifoFd);
      if (init?.ptyMaster !== undefined) fs.closeSync(init.ptyMaster);
      // Network first, while the namespace lives (CNI DEL wants it); network.json says what was made.
      if (network) for (const w of await teardownNetwork(dir, id, init && !init.handle.status ? `/proc/${init.pid}/ns/net` : '')) opts.onWarning?.(w);
      if (init) {
        init.kill(9);
        await init.exited;
      }
      this.followed.delete(id);
      this.pendingHooks.delete(id);
      await cgroup?.destroy().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
      if (opts.pidFile) fs.rmSync(opts.pidFile, { force: true });
      const err = e as Error & { field?: string; code?: string; errno?: number; label?: string };
      await this.recorder?.tryRecord(id, 'error', { message: err.message, step: err.label ?? err.field ?? 'create', ...(typeof err.errno === 'number' ? { errno: err.errno } : {}) });
      throw e;
    }
  }

  /** Start a created container: one byte through its exec fifo releases it to execve. */
  async start(id: string, opts: { onWarning?: (m: string) => void } = {}): Promise<void> {
    const rec = this.state.read(id);
    const known = this.pendingHooks.get(id);
    this.pendingHooks.delete(id);
    // The hooks as read at create (runc also keeps the config of create), else from the bundle.
    const hooks = this.state.status(rec) === 'created' ? (known ?? (await hooksOf(rec))) : {};
    const state = (status: string) => JSON.stringify({ ...this.state.ociState(rec), status });
    if (hooks.startContainer?.length) {
      try {
        // In the container's namespaces, before its process runs (the init is parked at its exec fifo).
        await runHooks(this.recorder, id, 'startContainer', hooks.startContainer, state('created'), { kind: 'container', pid: rec.pid, namespaces: rec.namespaces.map((n) => n.type as NamespaceType) });
      } catch (e) {
        await this.delete(id, { force: true }).catch(() => {});
        throw e;
      }
    }
    // The fact is recorded between opening the fifo (which proves the init is waiting) and releasing it, so
    // a watcher (the daemon) can never record the init's exit before its start.
    const fifo = this.openFifo(id);
    try {
      await this.recorder?.record(id, 'start', { pid: rec.pid });
    } catch (e) {
      fs.closeSync(fifo);
      throw e;
    }
    this.release(id, fifo);
    // poststart failures are warnings (the spec's rule): the container runs on.
    await runHooks(this.recorder, id, 'poststart', hooks.poststart, state('running'), { kind: 'runtime' }).catch((e: Error) => opts.onWarning?.(e.message));
  }

  /** Open a created container's exec fifo for writing; fails when the container is not waiting there. */
  private openFifo(id: string): number {
    const rec = this.state.read(id);
    const status = this.state.status(rec);
    if (status === 'stopped') throw new RuntimeError('bad-state', 'cannot start a container that has stopped');
    if (status !== 'created') throw new RuntimeError('bad-state', `cannot start an already ${status} container`);
    try {
      return fs.openSync(this.state.fifo(id), O.WRONLY | O.NONBLOCK | O.CLOEXEC);
    } catch (e) {
      // ENXIO: nobody holds the fifo for reading, i.e. the container's init is gone.
      if ((e as NodeJS.ErrnoException).code === 'ENXIO') throw new RuntimeError('bad-state', 'cannot start a container that has stopped');
      throw e;
    }
  }

  /** Write the byte that lets the init pass its exec fifo (opened by openFifo), and remove the fifo. */
  private release(id: string, fd: number): void {
    try {
      fs.writeSync(fd, Buffer.from([0]));
    } finally {
      fs.closeSync(fd);
    }
    fs.rmSync(this.state.fifo(id), { force: true });
  }

  /** OCI state of a container. */
  stateOf(id: string): OciState {
    return this.state.ociState(this.state.read(id));
  }

  /** States of every container under the root. */
  list(): OciState[] {
    const out: OciState[] = [];
    for (const id of this.state.list()) {
      try {
        out.push(this.stateOf(id));
      } catch {
        // a create in progress, or a state dir without state.json: not listed (as runc)
      }
    }
    return out;
  }

  /** Send a signal to the container's init (through a pidfd checked against the recorded start time). */
  async kill(id: string, signal: number = SIGNALS.TERM): Promise<void> {
    const rec = this.state.read(id);
    if (this.state.status(rec) === 'stopped') throw new RuntimeError('bad-state', 'container not running');
    const pidfd = openPidfd(rec.pid, BigInt(rec.pidStartTime));
    try {
      // Recorded before it is sent, so the log never shows the exit it causes ahead of it.
      await this.recorder?.tryRecord(id, 'kill', { signal });
      pidfdSignal(pidfd, signal);
    } finally {
      closeFd(pidfd);
    }
  }

  /** Send a signal to every process of the container (runc kill --all). */
  async killAll(id: string, signal: number = SIGNALS.TERM): Promise<void> {
    const rec = this.state.read(id);
    if (this.state.status(rec) === 'stopped') throw new RuntimeError('bad-state', 'container not running');
    await this.recorder?.tryRecord(id, 'kill', { signal, all: true });
    this.cgroups.signalAll(id, signal);
  }

  /** Start an additional process in a running container (runc exec); see actors/exec.ts. */
  exec(id: string, req: ExecRequest, opts: ExecIo = {}): Promise<ExecProcess> {
    return execInContainer(this.state, id, req, { ...opts, recorder: this.recorder });
  }

  /** Freeze every process of a running container (status "paused"). */
  async pause(id: string): Promise<void> {
    await this.cgroups.pause(id);
    await this.recorder?.tryRecord(id, 'pause', {});
  }

  /** Thaw a paused container. */
  async resume(id: string): Promise<void> {
    await this.cgroups.resume(id);
    await this.recorder?.tryRecord(id, 'resume', {});
  }

  /** Change the resources of a live container. */
  async update(id: string, resources: CgroupResources): Promise<void> {
    this.cgroups.update(id, resources);
    await this.recorder?.tryRecord(id, 'update', { resources: JSON.parse(JSON.stringify(resources, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))) as unknown });
  }

  /**
   * Delete a container: a stopped or created one directly (a created one is killed first, as runc does);
   * a running one only with force (SIGKILL, wait for its exit). Removes the state dir.
   */
  async delete(id: string, opts: { force?: boolean; onWarning?: (m: string) => void } = {}): Promise<void> {
    let rec: ContainerRecord;
    try {
      rec = this.state.read(id);
    } catch (e) {
      if (e instanceof RuntimeError && e.code === 'not-found' && this.state.exists(id)) {
        for (const w of await teardownNetwork(this.state.dir(id), id, '')) opts.onWarning?.(w);
        this.state.remove(id); // a state dir left by a crashed create
        return;
      }
      if (opts.force && e instanceof RuntimeError && e.code === 'not-found') return;
      throw e;
    }
    const status = this.state.status(rec);
    if ((status === 'running' || status === 'paused') && !opts.force) {
      throw new RuntimeError('bad-state', `cannot delete container ${id} that is not stopped: ${status}`);
    }
    // Network before the kill, while the namespace exists; after an exit it went with the namespace.
    const netns = status === 'stopped' ? undefined : openNetns(rec.pid, BigInt(rec.pidStartTime));
    try {
      for (const w of await teardownNetwork(this.state.dir(id), id, netns?.path ?? '')) opts.onWarning?.(w);
    } finally {
      netns?.close();
    }
    const init = this.followed.get(id);
    this.followed.delete(id);
    this.pendingHooks.delete(id);
    let cg: CgroupManager | undefined;
    try {
      cg = cgroupOf(rec);
    } catch {
      cg = undefined; // a record from before cgroups
    }
    if (status !== 'stopped') {
      // Every process, not only init (a container without its own pid namespace leaves its children behind).
      if (status === 'paused') await cg?.thaw().catch(() => {});
      try {
        cg?.signalAll(SIGNALS.KILL);
      } catch {
        // gone meanwhile
      }
    }
    if (init && init.pid === rec.pid && init.handle.pidfd >= 0) {
      // Still followed by its handle in this process: kill and wait through it. A second waiter would reap the
      // child under the handle, whose exited promise then never settles while it polls the pidfd in a busy loop.
      if (status !== 'stopped') init.kill(SIGNALS.KILL);
      const st = await init.exited;
      if (status !== 'stopped') await this.recordExit(id, st);
    } else if (status !== 'stopped') {
      await killAndWait(rec);
      await this.recorder?.tryRecord(id, 'exit', { pid: rec.pid, exitCode: null, signal: SIGNALS.KILL, unknown: true });
    } else if (this.recorder && ['created', 'running', 'paused'].includes((await this.recorder.stateOf(id)).value)) {
      // It ended where nobody was watching (a detached container): the exit is a fact too.
      await this.recorder.tryRecord(id, 'exit', { pid: rec.pid, exitCode: null, signal: null, unknown: true });
    }
    const hooks = await hooksOf(rec);
    await cg?.destroy();
    this.state.remove(id);
    await this.recorder?.tryRecord(id, 'destroy', { force: opts.force === true });
    // poststop: after the container is gone, before delete returns; a failure is only a warning.
    await runHooks(this.recorder, id, 'poststop', hooks.poststop, JSON.stringify({ ...this.state.ociState(rec), status: 'stopped', pid: 0 }), { kind: 'runtime' }).catch((e: Error) => opts.onWarning?.(e.message));
  }

  /**
   * Create and start in one process. With `detach`, return once started; otherwise follow the container
   * (forwarding signals), delete it after it exits and return its exit status.
   */
  async run(id: string, opts: CreateOptions & { detach?: boolean; forwardSignals?: boolean } = {}): Promise<ExitStatus | null> {
    const created = await this.create(id, { ...opts, keepTerminal: !opts.detach && !opts.consoleSocket });
    try {
      await this.start(id, { onWarning: opts.onWarning });
    } catch (e) {
      await this.delete(id, { force: true });
      throw e;
    }
    if (opts.detach) {
      created.init.handle.detach();
      this.followed.delete(id);
      return null;
    }
    const unforward = opts.forwardSignals ? forwardSignals(created.init) : () => {};
    const master = created.ptyMaster;
    const untty = master === undefined ? () => {} : attachTerminal(master);
    try {
      const status = await created.init.exited;
      untty();
      await this.recordExit(id, status);
      return status;
    } finally {
      unforward();
      await this.delete(id, { force: true, onWarning: opts.onWarning });
    }
  }
}

async function killAndWait(rec: ContainerRecord): Promise<void> {
  let pidfd: number;
  try {
    pidfd = openPidfd(rec.pid, BigInt(rec.pidStartTime));
  } catch {
    return; // already gone
  }
  try {
    pidfdSignal(pidfd, SIGNALS.KILL);
  } catch {
    // exited meanwhile
  }
  await waitPidfd(pidfd, 10_000);
}

function writePidFile(file: string, pid: number): void {
  const abs = path.resolve(file);
  const tmp = `${abs}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, String(pid));
  fs.renameSync(tmp, abs);
}
