/**
 * exec: an additional process in a running container. The child joins the container's namespaces with
 * setns as chain steps (user first, mount last; the pid namespace through the parent's pid_for_children, so
 * the process is visible inside), waits at its setup gate while the parent moves it into the container's
 * cgroups, then applies its own rlimits, user, capabilities, no_new_privs and the container's seccomp
 * profile, and execs. The child is single-threaded, which is what makes setns(user/mnt) possible.
 */
import fs from 'node:fs';
import { SpawnPlan } from '../spawn/spawn-plan.js';
import { ChildSteps } from '../spawn/child-steps.js';
import { SetupError, sessionSteps, terminalSteps, withHome } from './container-plan.js';
import { O, PR } from '../sys/flags.js';
import { NAMESPACE_FLAGS, NAMESPACE_PROC_NAMES } from './namespaces.js';
import { isSameProcess } from '../process/pidfd.js';
import { setupRlimits, setupUser } from '../process/process-setup.js';
import { findExecutable } from '../rootfs/root-path.js';
import { compileSeccomp, loadSeccompSteps } from '../seccomp/seccomp.js';
import type { SpawnHandle } from '../spawn/spawn-handle.js';
import { spawn } from '../spawn/spawn.js';
import { compileCached } from '../spawn/plan-cache.js';
import type { ContainerSetup, NamespaceType, ProcessSetup } from '../../config/model.js';
import { recvFd, socketPair } from '../io/unix-socket.js';
import { ERRNO } from '../sys/numbers.js';

/** The running container an exec joins. */
export interface ExecTarget {
  /** Host pid of the container's init and its start time (checked, against pid reuse). */
  pid: number;
  pidStartTime: bigint;
  /** The container's setup (its namespaces, rootfs, mounts and seccomp profile). */
  setup: ContainerSetup;
  /** Move the new process into the container's cgroups (runs at the setup gate). */
  joinCgroups?: (pid: number) => void | Promise<void>;
}

/** Options of spawnExec. */
export interface ExecOptions {
  stdio?: readonly number[];
  /** Parent fds the process gets as 3, 4, ... (runc exec --preserve-fds). */
  extraFiles?: readonly number[];
  timeoutMs?: number;
}

const JOIN_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'cgroup', 'mount'];

function nsInode(path: string): number {
  return fs.statSync(path).ino;
}

/** A started exec: its handle and, with process.terminal, the pty master made in the container (the caller's to close). */
export interface ExecSpawn {
  handle: SpawnHandle;
  ptyMaster?: number;
}

/** Start `proc` inside the container `target`. Resolves once the process has exec'd. */
export async function spawnExec(target: ExecTarget, proc: ProcessSetup, opts: ExecOptions = {}): Promise<ExecSpawn> {
  if (!isSameProcess(target.pid, target.pidStartTime)) throw new SetupError('container', `its init (pid ${target.pid}) is not running`);
  const setup: ContainerSetup = { ...target.setup, process: proc };
  const binds = setup.mounts.filter((m) => m.type === '' && m.source.startsWith('/')).map((m) => ({ dest: m.destination, source: m.source }));
  const execPath = findExecutable(setup.rootfs, proc.args[0], proc.env, binds);
  if (execPath === undefined) throw new SetupError('process.args[0]', `executable ${JSON.stringify(proc.args[0])} not found in $PATH of the container`);

  const types = new Set(setup.namespaces.map((n) => n.type));
  const files: Array<{ type: NamespaceType; path: string }> = [];
  for (const t of JOIN_ORDER) {
    if (!types.has(t)) continue;
    const path = `/proc/${target.pid}/ns/${NAMESPACE_PROC_NAMES[t]}`;
    // Joining one's own user namespace is EINVAL; the others are harmless when they are the same.
    if (t === 'user' && nsInode(path) === nsInode('/proc/self/ns/user')) continue;
    files.push({ type: t, path });
  }
  const s = new ChildSteps(new SpawnPlan().preserveFds(opts.extraFiles?.length ?? 0));
  for (const f of files) {
    s.call('setns', [s.plan.keep(`ns:${f.type}`), NAMESPACE_FLAGS[f.type]], { field: 'exec', label: `setns(${JSON.stringify(f.path)}, ${f.type})` });
  }
  s.plan.gate('setup');
  // A detached exec outlives the process that started it (runc exec -d).
  s.call('prctl', [PR.SET_PDEATHSIG, 0, 0, 0, 0], { label: 'prctl(PR_SET_PDEATHSIG, 0)' });
  sessionSteps(s);
  if (proc.terminal) terminalSteps(s, s.plan.keep('consoleSocket'), proc.consoleSize);
  setupRlimits(s, setup);
  const seccomp = setup.seccomp ? compileSeccomp(setup.seccomp) : undefined;
  if (seccomp?.notify) throw new SetupError('linux.seccomp', 'exec into a container whose profile uses SCMP_ACT_NOTIFY is not supported yet');
  const early = seccomp !== undefined && !proc.noNewPrivileges;
  if (seccomp && early) loadSeccompSteps(s, seccomp);
  setupUser(s, setup, { setgroupsAllowed: true, execPath, execCheckTolerates: early ? [ERRNO.EPERM, ERRNO.ENOSYS] : [] });
  if (seccomp && !early) loadSeccompSteps(s, seccomp);
  s.plan.exec(execPath, proc.args, withHome(setup));

  const keep: Record<string, number> = {};
  opts.extraFiles?.forEach((fd, i) => (keep[`preserve:${i}`] = fd));
  const opened: number[] = [];
  let pidns: number | undefined;
  let consoleEnd = -1;
  try {
    if (proc.terminal) {
      const [parentEnd, childEnd] = socketPair();
      consoleEnd = parentEnd;
      keep.consoleSocket = childEnd;
      opened.push(childEnd);
    }
    for (const f of files) {
      const fd = fs.openSync(f.path, O.RDONLY | O.CLOEXEC);
      opened.push(fd);
      keep[`ns:${f.type}`] = fd;
    }
    if (types.has('pid')) {
      pidns = fs.openSync(`/proc/${target.pid}/ns/pid`, O.RDONLY | O.CLOEXEC);
      opened.push(pidns);
    }
    const { compiled, release: releasePlan } = compileCached(s.plan);
    let handle: SpawnHandle;
    try {
      handle = spawn(compiled, {
        namespaces: 0,
        stdio: opts.stdio,
        keep,
        pidNamespaceFd: pidns,
        timeoutMs: opts.timeoutMs ?? 30_000,
        gates: { setup: async (h) => target.joinCgroups?.(h.pid) },
      });
    } finally {
      releasePlan();
    }
    for (const fd of opened.splice(0)) fs.closeSync(fd);
    try {
      await handle.started;
    } catch (e) {
      // Killed at a failed step or gate: resolve only once it is reaped, so no process of it is left when this rejects.
      await handle.exited.catch(() => {});
      throw e;
    }
    if (consoleEnd < 0) return { handle };
    // The child made its pty in the container and sent the master before execve.
    const { fd } = recvFd(consoleEnd);
    if (fd < 0) throw new SetupError('process.terminal', 'the exec sent no pty master');
    return { handle, ptyMaster: fd };
  } finally {
    for (const fd of opened) fs.closeSync(fd);
    if (consoleEnd >= 0) fs.closeSync(consoleEnd);
  }
}
