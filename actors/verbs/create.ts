/**
 * create, as a builder: validate the bundle, claim the state dir, make the cgroups (limits written), the exec
 * fifo and the network, spawn the init parked before execve, write state.json with the config of create
 * (what every later verb uses), then record the `create` fact. Any failure undoes every step already done —
 * no process, cgroup, mount, network, state dir or pid file is left — and records an `error` fact.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type LoadedBundle, loadBundle } from '../../config/index.js';
import { type NetworkConfig, networkPlanOf } from '../../config/network.js';
import { encodeStoredConfig } from '../../config/stored-config.js';
import { LifecycleError } from '../../errors/index.js';
import { type CgroupManager, type ContainerInit, NAMESPACE_PROC_NAMES, O, createCgroupManager, knownSyscall, mkfifo, processStartTime, spawnContainer, windowSize } from '../../kernel/index.js';
import { sendToConsoleSocket } from '../foreground.js';
import { runHooks } from '../hook-runner.js';
import { type NetworkRecord, networkSummary, setupNetwork, teardownNetwork } from '../network.js';
import { type ContainerRecord, rfc3339Nano } from '../state-dir.js';
import { crashPoint } from '../crash-points.js';
import { writeFileAtomic } from '../state-file.js';
import type { VerbContext } from './context.js';

/** What a user sets to create a container (the library's and the command service's options). */
export interface CreateOptions {
  /** Bundle directory (default: the current directory). */
  bundle?: string;
  /** Write the container's host pid here. */
  pidFile?: string;
  /** Enter the rootfs with MS_MOVE + chroot (runc --no-pivot). */
  noPivot?: boolean;
  /** For process.terminal: a unix socket that receives the pty master (SCM_RIGHTS), as runc --console-socket. */
  consoleSocket?: string;
  /** The container's network (veth interfaces, CNI); default: the `org.cordon.network` annotation, if any. */
  network?: NetworkConfig;
  /** Fds for the container's stdin, stdout and stderr (default: this process's 0-2). */
  stdio?: readonly [number, number, number] | readonly number[];
  /**
   * The bundle's parsed config.json, when the caller already read and checked it (the command policy): the
   * create uses this object and does not read config.json again. Default: read `bundle/config.json`.
   */
  spec?: Record<string, unknown>;
}

/** What a CLI door adds: the caller's extra fds (--preserve-fds), and a terminal kept for a foreground run. */
export interface CreateRequest extends CreateOptions {
  /** Fds the container's process gets as 3, 4, ... (runc --preserve-fds N passes the caller's 3..3+N-1). */
  extraFiles?: readonly number[];
  /** For process.terminal without a console socket: keep the master here (a foreground run drives it). */
  keepTerminal?: boolean;
  /**
   * Called right before the container's process is spawned (cgroups made, nothing running yet): throwing
   * abandons the create, undone like any failed step (the control socket checks its caller is still there).
   */
  beforeSpawn?: () => void;
}

/** A container just created by this process. */
export interface CreatedContainer {
  record: ContainerRecord;
  init: ContainerInit;
  /** The pty master, when the process has a terminal and no console socket took it. */
  ptyMaster?: number;
  /** What its network setup made (interfaces, CNI result with the addresses), when it has a network. */
  network?: NetworkRecord;
}

/** Builds one container, step by step, and takes every step back if a later one fails. */
export class ContainerBuilder {
  private bundle?: LoadedBundle;
  private dir?: string;
  private cgroup?: CgroupManager;
  private fifoFd = -1;
  private init?: ContainerInit;
  private netRec?: NetworkRecord;
  private network?: ReturnType<typeof networkPlanOf>;

  constructor(
    private readonly ctx: VerbContext,
    readonly id: string,
    private readonly req: CreateRequest,
  ) {}

  /** Build it: resolves once the init waits at its exec fifo and the `create` fact is in the log. */
  async build(): Promise<CreatedContainer> {
    try {
      return await this.steps();
    } catch (e) {
      await this.undo();
      await this.recordFailure(e);
      throw e;
    }
  }

  private async steps(): Promise<CreatedContainer> {
    const { ctx, id, req } = this;
    const bundle = (this.bundle = await loadBundle(req.bundle ?? process.cwd(), { noPivotRoot: req.noPivot, knownSyscall, spec: req.spec }));
    for (const w of bundle.warnings) ctx.warn(w);
    this.network = networkPlanOf(req.network, bundle.annotations, bundle.setup.namespaces);
    if (bundle.setup.process.terminal && !req.consoleSocket && !req.keepTerminal) {
      throw new LifecycleError('ConfigInvalid', 'process.terminal: cannot allocate a tty for a container that will be detached without --console-socket', { field: 'process.terminal' });
    }
    const dir = (this.dir = ctx.state.claim(id));
    // Cgroups first, limits written, so the container joins them (its first steps) before any code of its own runs.
    const cg = createCgroupManager({ id, cgroupsPath: bundle.setup.cgroupsPath });
    ctx.noteIntent(id, { cgroupPaths: cg.paths });
    this.cgroup = cg;
    cg.create();
    ctx.noteIntent(id, { cgroupCreated: cg.created ?? [] });
    if (bundle.setup.resources) cg.apply(bundle.setup.resources);
    crashPoint('create:cgroups');
    const fifo = ctx.state.fifo(id);
    mkfifo(fifo, 0o622);
    this.fifoFd = fs.openSync(fifo, O.RDWR | O.CLOEXEC);
    // The state a seccomp notify listener receives with the listener fd (runtime-spec ContainerProcessState.state).
    const seccompState = (pid: number) => ({ ociVersion: bundle.spec.ociVersion, id, status: 'creating', pid, bundle: bundle.bundle, ...(Object.keys(bundle.annotations).length ? { annotations: bundle.annotations } : {}) });
    let setup = bundle.setup;
    if (setup.process.terminal && !setup.process.consoleSize && req.keepTerminal) {
      const ws = windowSize(1);
      if (ws) setup = { ...setup, process: { ...setup.process, consoleSize: { height: ws.rows, width: ws.cols } } };
    }
    const hooks = bundle.hooks;
    const early = [...(hooks.prestart ?? []), ...(hooks.createRuntime ?? []), ...(hooks.createContainer ?? [])];
    const onPrestart = early.length === 0 ? undefined : async (pid: number) => {
      const state = JSON.stringify(seccompState(pid));
      // Spec order: prestart (deprecated) and createRuntime in the runtime's namespaces, then createContainer in the container's.
      await runHooks(ctx.recorder, id, 'prestart', hooks.prestart, state, { kind: 'runtime' });
      await runHooks(ctx.recorder, id, 'createRuntime', hooks.createRuntime, state, { kind: 'runtime' });
      await runHooks(ctx.recorder, id, 'createContainer', hooks.createContainer, state, { kind: 'container', pid, namespaces: setup.namespaces.map((n) => n.type) });
    };
    // The init joins its cgroups itself before any setup (clone3 into the v2 cgroup, "0" written to each v1
    // tasks file: no RCU grace period on the start path); at the setup gate it is in them and in its new
    // network namespace: the network goes in there.
    const network = this.network;
    const onSetup = network ? async (pid: number) => {
      this.netRec = await setupNetwork(dir, id, pid, network);
    } : undefined;
    req.beforeSpawn?.();
    const init = (this.init = spawnContainer(setup, { startGate: 'fifo', execFifoFd: this.fifoFd, stdio: req.stdio, extraFiles: req.extraFiles, seccompState, cgroupJoin: cg.joinTargets(), onSetup, onPrestart }));
    fs.closeSync(this.fifoFd);
    this.fifoFd = -1;
    await init.created;
    const startTime = processStartTime(init.pid);
    if (startTime === undefined) throw new LifecycleError('SystemError', `container ${id} exited during create`);
    ctx.noteIntent(id, { initPid: init.pid, initStartTime: String(startTime) });
    crashPoint('create:spawned');
    const record: ContainerRecord = {
      version: 2,
      id,
      ociVersion: bundle.spec.ociVersion,
      pid: init.pid,
      pidStartTime: String(startTime),
      bundle: bundle.bundle,
      rootfs: bundle.setup.rootfs,
      created: rfc3339Nano(),
      owner: '',
      annotations: bundle.annotations,
      namespaces: bundle.setup.namespaces.map((n) => ({ type: n.type, path: n.path ?? `/proc/${init.pid}/ns/${NAMESPACE_PROC_NAMES[n.type]}` })),
      cgroupPaths: { ...cg.paths },
      cgroupCreated: [...(cg.created ?? [])],
      config: encodeStoredConfig({ setup: bundle.setup, hooks: bundle.hooks }),
    };
    ctx.state.write(record);
    if (req.pidFile) writePidFile(req.pidFile, init.pid);
    crashPoint('create:state');
    // The record rides along, so a supervisor whose state dir was lost can rebuild it from the log (restore).
    const net = this.netRec;
    await ctx.recorder.record(id, 'create', { pid: init.pid, bundle: bundle.bundle, record, ...(net ? { network: networkSummary(net), networkRecord: net } : {}) });
    ctx.followed.set(id, init);
    let ptyMaster = init.ptyMaster;
    if (ptyMaster !== undefined && req.consoleSocket) {
      // As runc: the master goes to the console socket; no copy stays here.
      const master = ptyMaster;
      ptyMaster = undefined;
      sendToConsoleSocket(req.consoleSocket, master);
    }
    return { record, init, ptyMaster, network: net };
  }

  /** Take back every step done so far, network first while the namespace lives (CNI DEL wants it). */
  private async undo(): Promise<void> {
    const { ctx, id, init } = this;
    if (this.fifoFd >= 0) fs.closeSync(this.fifoFd);
    if (init?.ptyMaster !== undefined) fs.closeSync(init.ptyMaster);
    if (this.dir && this.network) for (const w of await teardownNetwork(this.dir, id, init && !init.handle.status ? `/proc/${init.pid}/ns/net` : '')) ctx.warn(w);
    if (init) {
      init.kill(9);
      await init.exited;
    }
    ctx.followed.delete(id);
    await this.cgroup?.destroy().catch(() => {});
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    if (this.req.pidFile && this.dir) fs.rmSync(this.req.pidFile, { force: true });
  }

  /** The failure is a fact too (creating → destroyed); one that cannot be recorded says so in the error. */
  private async recordFailure(e: unknown): Promise<void> {
    const err = e as Error & { field?: string; errno?: number; label?: string };
    // Refused before anything was made (a bad config, an id in use): no container lived, nothing to record.
    if (!this.dir) return;
    try {
      await this.ctx.recorder.record(this.id, 'error', { message: err.message, step: err.label ?? err.field ?? 'create', ...(typeof err.errno === 'number' ? { errno: err.errno } : {}) });
    } catch (le) {
      err.message = `${err.message} (and the failure could not be recorded: ${(le as Error).message})`;
    }
  }
}

function writePidFile(file: string, pid: number): void {
  writeFileAtomic(path.resolve(file), String(pid), 'pid file (--pid-file)', 0o644);
}
