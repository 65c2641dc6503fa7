/**
 * Spawning a container's init process: compile its plan, open the namespace files it joins, clone, do
 * the parent's part at the setup gate (id maps, oom_score_adj, caller's hook), and expose created /
 * start / exit. This is the kernel layer's container primitive; state dirs and events live above it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { CgroupJoinTargets } from '../cgroups/types.js';
import { type ContainerPlan, SetupError, type StartGate, buildContainerPlan } from './container-plan.js';
import type { HostMounts } from '../rootfs/rootfs.js';
import type { SpawnHandle } from '../spawn/spawn-handle.js';
import { spawn } from '../spawn/spawn.js';
import { writeIdMaps } from './namespaces.js';
import type { ContainerSetup } from '../../config/model.js';
import type { ExitStatus } from '../process/pidfd.js';
import { O } from '../sys/flags.js';
import { connectUnix, recvFd, sendFds, socketPair } from '../io/unix-socket.js';
import { koffi } from '../sys/libc.js';
import { compileCached } from '../spawn/plan-cache.js';

/** Options of spawnContainer. */
export interface ContainerSpawnOptions {
  startGate: StartGate;
  /** For startGate 'fifo': the exec fifo opened O_RDWR (the child keeps a copy). */
  execFifoFd?: number;
  /** Parent fds for the container's 0, 1, 2 (default: this process's). */
  stdio?: readonly number[];
  /** Parent fds the container's process gets as 3, 4, ... (runc --preserve-fds). */
  extraFiles?: readonly number[];
  /** Runs at the setup gate after the id maps are written (network, cgroup placement without cgroupJoin); the child waits for it. */
  onSetup?: (pid: number) => void | Promise<void>;
  /**
   * The child joins these cgroups itself (no cgroup.procs write by the parent, whose first one after a quiet
   * spell waits ~10 ms for an RCU grace period): created in the v2 directory by clone3(CLONE_INTO_CGROUP), and
   * writing "0" to each v1 `tasks` file as its first steps. Where clone3 cannot be used the setup gate writes
   * the v2 cgroup.procs instead, before onSetup.
   */
  cgroupJoin?: CgroupJoinTargets;
  /** When set, the child stops after its mounts, before pivot_root, while this runs (prestart/createRuntime/createContainer hooks). */
  onPrestart?: (pid: number) => void | Promise<void>;
  /** Fail if the container is not created within this time (default 30 s). */
  timeoutMs?: number;
  /** The OCI state sent to a seccomp notify listener with the listener fd (runtime-spec ContainerProcessState.state). */
  seccompState?: (pid: number) => Record<string, unknown>;
  host?: HostMounts;
}

/** Milliseconds spent in each phase of a start, for the latency breakdown. */
export interface StartBreakdown {
  planMs: number;
  compileMs: number;
  cloneMs: number;
  /** clone → arrival at the start gate (setup in the child, including the parent's setup gate work). */
  setupMs?: number;
  /** start released → execve done. */
  execMs?: number;
}

/** A container's first process between clone and exit. */
export class ContainerInit {
  /** Host pid. */
  readonly pid: number;
  readonly handle: SpawnHandle;
  /** The plan it was spawned from; released once the process has exec'd (a running container's handle must not pin it). */
  plan: ContainerPlan | undefined;
  /** Resolves when the container is created (parked at its start gate); rejects with the failing step. */
  readonly created: Promise<void>;
  readonly breakdown: StartBreakdown;
  /** With process.terminal: the pty master the container sent (owned by the caller once created). */
  ptyMaster?: number;
  private readonly release?: () => void;
  private releasedAt?: number;

  constructor(p: { handle: SpawnHandle; plan: ContainerPlan; release?: () => void; breakdown: StartBreakdown; onCreated?: () => void }) {
    this.handle = p.handle;
    this.pid = p.handle.pid;
    this.plan = p.plan;
    this.release = p.release;
    this.breakdown = p.breakdown;
    this.created = p.handle.arrived('start').then(() => {
      this.breakdown.setupMs = (p.handle.timings.gates.start ?? 0) - p.handle.timings.cloned;
      p.onCreated?.();
    });
    this.created.catch(() => {});
    p.handle.started.then(
      () => {
        this.plan = undefined;
      },
      () => {},
    );
  }

  /** For a pipe start gate: let the container exec; resolves once execve succeeded. */
  async start(): Promise<void> {
    if (!this.release) throw new Error('start(): this container waits on its exec fifo; write to the fifo instead');
    await this.created;
    this.releasedAt = performance.now();
    this.release();
    await this.handle.started;
    this.breakdown.execMs = (this.handle.timings.exec ?? performance.now()) - this.releasedAt;
  }

  /** Resolves with the exit status (only while this process is the parent and follows it). */
  get exited(): Promise<ExitStatus> {
    return this.handle.exited;
  }

  /** Signal the init process through its pidfd. */
  kill(signal: number): boolean {
    return this.handle.kill(signal);
  }
}

/** Spawn a container's init from a validated setup. Throws SetupError before anything is created. */
export function spawnContainer(setup: ContainerSetup, opts: ContainerSpawnOptions): ContainerInit {
  const t0 = performance.now();
  const plan = buildContainerPlan(setup, { startGate: opts.startGate, host: opts.host, hookGate: opts.onPrestart !== undefined, preserveFds: opts.extraFiles?.length, cgroupTasks: opts.cgroupJoin?.tasks.map((t) => t.name) });
  const t1 = performance.now();
  // Replicas of one bundle make the same plan: its native layout is reused (spawn/plan-cache.ts).
  const { compiled, release: releasePlan } = compileCached(plan.plan);
  const t2 = performance.now();
  const keep: Record<string, number> = {};
  opts.extraFiles?.forEach((fd, i) => (keep[`preserve:${i}`] = fd));
  const opened: number[] = [];
  let notifyEnd = -1;
  let consoleEnd = -1;
  if (setup.process.terminal) {
    const [parentEnd, childEnd] = socketPair();
    consoleEnd = parentEnd;
    keep.consoleSocket = childEnd;
    opened.push(childEnd);
  }
  if (plan.seccomp?.notify) {
    const [parentEnd, childEnd] = socketPair();
    notifyEnd = parentEnd;
    keep.seccompSocket = childEnd;
    opened.push(childEnd);
  }
  let release: (() => void) | undefined;
  let handle: SpawnHandle;
  try {
    for (const j of plan.joinFiles) {
      const fd = fs.openSync(j.path, O.RDONLY | O.CLOEXEC);
      opened.push(fd);
      keep[j.keep] = fd;
    }
    if (opts.startGate === 'fifo') {
      if (opts.execFifoFd === undefined) throw new Error('spawnContainer: startGate fifo needs execFifoFd');
      keep.execFifo = opts.execFifoFd;
    }
    opts.cgroupJoin?.tasks.forEach((t, i) => {
      const fd = fs.openSync(t.path, O.WRONLY | O.CLOEXEC);
      opened.push(fd);
      keep[`cgroupTasks:${i}`] = fd;
    });
    let cgroupFd: number | undefined;
    if (opts.cgroupJoin?.unified !== undefined) {
      cgroupFd = fs.openSync(opts.cgroupJoin.unified, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
      opened.push(cgroupFd);
    }
    const unified = opts.cgroupJoin?.unified;
    let pidnsFd: number | undefined;
    if (plan.namespaces.pidJoin !== undefined) {
      pidnsFd = fs.openSync(plan.namespaces.pidJoin, O.RDONLY | O.CLOEXEC);
      opened.push(pidnsFd);
    }
    const startHeld = new Promise<void>((res) => {
      release = res;
    });
    handle = spawn(compiled, {
      namespaces: plan.namespaces.cloneFlags,
      stdio: opts.stdio,
      keep,
      pidNamespaceFd: pidnsFd,
      intoCgroupFd: cgroupFd,
      timeoutMs: opts.timeoutMs ?? 30_000,
      gates: {
        setup: async (h) => {
          if (plan.namespaces.newUserns) writeIdMaps(h.pid, setup.uidMappings, setup.gidMappings);
          if (setup.process.oomScoreAdj !== undefined) writeOomScoreAdj(h.pid, setup.process.oomScoreAdj);
          if (unified !== undefined && !h.intoCgroup) joinUnified(unified, h.pid);
          await opts.onSetup?.(h.pid);
        },
        ...(opts.onPrestart ? { prestart: (h: SpawnHandle) => opts.onPrestart?.(h.pid) } : {}),
        ...(opts.startGate === 'pipe' ? { start: () => startHeld } : {}),
      },
    });
  } catch (e) {
    if (notifyEnd >= 0) fs.closeSync(notifyEnd);
    if (consoleEnd >= 0) fs.closeSync(consoleEnd);
    throw e;
  } finally {
    for (const fd of opened) fs.closeSync(fd);
    releasePlan();
  }
  const t3 = performance.now();
  const profile = setup.seccomp;
  // The listener gets its fd as soon as the child has sent it, not at the start gate: the child's own syscalls
  // after loading the filter (close, prctl, the user switch without no_new_privs) may be notified ones, and
  // only the listener can let them go on.
  let poll: { close(): void } | undefined;
  let handoffError: unknown;
  const handoff = () => {
    if (notifyEnd < 0) return;
    poll?.close();
    poll = undefined;
    try {
      const { fd } = recvFd(notifyEnd);
      if (fd < 0) throw new Error('linux.seccomp: the container sent no seccomp listener fd');
      let conn: number;
      try {
        conn = connectUnix(profile?.listenerPath as string);
      } catch (e) {
        fs.closeSync(fd);
        throw new SetupError('linux.seccomp.listenerPath', (e as Error).message);
      }
      try {
        const msg = { ociVersion: '1.2.0', fds: ['seccompFd'], pid: handle.pid, metadata: profile?.listenerMetadata ?? '', state: opts.seccompState?.(handle.pid) ?? { ociVersion: '1.2.0', id: '', status: 'creating', pid: handle.pid, bundle: '' } };
        sendFds(conn, Buffer.from(JSON.stringify(msg)), [fd]);
      } finally {
        fs.closeSync(conn);
        fs.closeSync(fd);
      }
    } finally {
      if (notifyEnd >= 0) fs.closeSync(notifyEnd);
      notifyEnd = -1;
    }
  };
  if (notifyEnd >= 0) {
    const end = notifyEnd;
    if (profile?.listenerPath) {
      poll = koffi.node.poll(end, { readable: true }, () => {
        try {
          handoff();
        } catch (e) {
          handoffError = e; // reported when the container arrives at its start gate
        }
      });
    }
    // Close our end if the container fails before it hands over its listener fd.
    handle.started.catch(() => {
      if (notifyEnd === end) {
        poll?.close();
        poll = undefined;
        notifyEnd = -1;
        fs.closeSync(end);
      }
    });
  }
  const init = new ContainerInit({
    handle,
    plan,
    release: opts.startGate === 'pipe' ? release : undefined,
    breakdown: { planMs: t1 - t0, compileMs: t2 - t1, cloneMs: t3 - t2 },
    onCreated: () => {
      if (consoleEnd >= 0) {
        // The child made its pty inside the container and sent the master before arriving at the gate.
        try {
          const { fd } = recvFd(consoleEnd);
          if (fd < 0) throw new SetupError('process.terminal', 'the container sent no pty master');
          init.ptyMaster = fd;
        } finally {
          fs.closeSync(consoleEnd);
          consoleEnd = -1;
        }
      }
      // A handoff the poll already did may have failed (nobody listening): that fails the create too.
      if (handoffError) throw handoffError;
      if (notifyEnd < 0 || !profile?.listenerPath) return;
      // The child sent its listener fd before arriving at the start gate: hand it to the listener with the
      // container process state (ContainerProcessState), unless that happened already.
      handoff();
    },
  });
  if (consoleEnd >= 0) {
    handle.started.catch(() => {
      if (consoleEnd >= 0) fs.closeSync(consoleEnd);
      consoleEnd = -1;
    });
  }
  return init;
}

function joinUnified(dir: string, pid: number): void {
  const p = path.join(dir, 'cgroup.procs');
  try {
    fs.writeFileSync(p, String(pid));
  } catch (e) {
    throw Object.assign(new Error(`linux.cgroupsPath: join (unified): write ${pid} to ${p}: ${(e as NodeJS.ErrnoException).code}`), { code: (e as NodeJS.ErrnoException).code });
  }
}

function writeOomScoreAdj(pid: number, value: number): void {
  const p = `/proc/${pid}/oom_score_adj`;
  try {
    fs.writeFileSync(p, String(value));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`process.oomScoreAdj: write ${value} to ${p}: ${err.code}${err.code === 'EACCES' ? ' (lowering oom_score_adj needs CAP_SYS_RESOURCE)' : ''}`), { code: err.code });
  }
}
