/**
 * The whole container start as one spawn plan, in libcontainer's order: join namespaces → setup gate
 * (parent writes id maps, places cgroups) → become root in the user namespace → loopback → rootfs and
 * pivot_root → hostname/sysctl → read-only root, readonly and masked paths → rlimits → user, caps,
 * no_new_privs → start gate (pipe, or the exec fifo of a detached create) → execve.
 */
import fs from 'node:fs';
import { ERRNO, SYS } from '../sys/numbers.js';
import { SpawnPlan } from '../spawn/spawn-plan.js';
import { ChildSteps } from '../spawn/child-steps.js';
import { O, PR, TIOC } from '../sys/flags.js';
import type { FdRef } from '../spawn/spawn-plan.js';
import { readMountInfo } from '../rootfs/mountinfo.js';
import { loopbackUp } from '../net/loopback.js';
import { NAMESPACE_FLAGS, type NamespacePlan, planNamespaces } from './namespaces.js';
import { setupKernelSettings, setupRlimits, setupUser } from '../process/process-setup.js';
import { findExecutable, resolveInRoot } from '../rootfs/root-path.js';
import { type HostMounts, finalizeRootfs, mountRootfs } from '../rootfs/rootfs.js';
import type { ContainerSetup } from '../../config/model.js';
import { type CompiledFilter, compileSeccomp, loadSeccompSteps } from '../seccomp/seccomp.js';

/** A container setup the kernel layer cannot carry out, named by its config field. */
export class SetupError extends Error {
  /** JSON path of the field, e.g. "process.args[0]". */
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'SetupError';
    this.field = field;
  }
}

/** How the created container waits for start. */
export type StartGate =
  /** A pipe gate released by the spawning process (library, supervisor). */
  | 'pipe'
  /** The exec fifo (passed as keep fd "execFifo", opened O_RDWR): released by whoever writes a byte to it. */
  | 'fifo';

/** Options of buildContainerPlan. */
export interface ContainerPlanOptions {
  startGate: StartGate;
  /** The host's mounts (default: read now). */
  host?: HostMounts;
  /** Stop at a `prestart` gate after the mounts, before pivot_root, for prestart/createRuntime/createContainer hooks. */
  hookGate?: boolean;
  /** Fds passed to the process as 3..3+N-1 (keep names "preserve:I"; runc --preserve-fds). */
  preserveFds?: number;
  /**
   * cgroup v1 hierarchies the child joins itself, first thing, by writing "0" to their `tasks` files (keep fds
   * "cgroupTasks:I", opened by the parent): a thread moving itself skips the kernel's global threadgroup lock,
   * whose write side waits for an RCU grace period. The names are only for error messages.
   */
  cgroupTasks?: readonly string[];
}

/** A container's spawn plan and what the parent must do around it. */
export interface ContainerPlan {
  plan: SpawnPlan;
  namespaces: NamespacePlan;
  /** Container path of the executable (args[0] looked up in PATH). */
  execPath: string;
  /** Keep-fd names of namespaces to join, and the files to open for them. */
  joinFiles: Array<{ keep: string; path: string }>;
  /** The seccomp filter the child loads (its `notify` needs the keep fd "seccompSocket"). */
  seccomp?: CompiledFilter;
}

const SETNS_EXTRA_FIELD = 'linux.namespaces';

/**
 * Reject a mount destination whose path in the rootfs passes through a symlink with a relative target that
 * climbs above the root ("../../../tmp/x"): RESOLVE_IN_ROOT would clamp it to some other place inside the
 * rootfs, which is never what such a link meant.
 */
function checkMountDestinations(setup: ContainerSetup): void {
  setup.mounts.forEach((m, i) => {
    const field = `mounts[${i}].destination`;
    let hops;
    try {
      hops = resolveInRoot(setup.rootfs, m.destination).hops;
    } catch (e) {
      throw new SetupError(field, `${JSON.stringify(m.destination)}: ${(e as Error).message}`);
    }
    const bad = hops.find((h) => h.escapes);
    if (bad) throw new SetupError(field, `${JSON.stringify(m.destination)} passes through the symlink ${bad.link} -> ${JSON.stringify(bad.target)}, which points outside the rootfs`);
  });
}

/** The process env, plus HOME from the container's /etc/passwd (or "/") when the config sets none, as runc. */
export function withHome(setup: ContainerSetup): string[] {
  const env = setup.process.env;
  if (env.some((e) => e.startsWith('HOME='))) return env;
  let home = '/';
  try {
    const passwd = resolveInRoot(setup.rootfs, '/etc/passwd');
    if (passwd.exists) {
      for (const line of fs.readFileSync(passwd.hostPath, 'utf8').split('\n')) {
        const f = line.split(':');
        if (f.length >= 7 && Number(f[2]) === setup.process.uid && f[5]) {
          home = f[5];
          break;
        }
      }
    }
  } catch {
    // unreadable passwd: "/" as runc
  }
  return [...env, `HOME=${home}`];
}

/** A new session, as runc's init makes one. */
export function sessionSteps(s: ChildSteps): void {
  s.call('setsid', [], { label: 'setsid()' });
}

/**
 * A pty allocated inside the container, as runc does: /dev/ptmx of the container's own devpts, so `tty`
 * names a /dev/pts/N that exists there. The slave becomes stdio and the controlling terminal; the master
 * goes to the runtime over `socket` (SCM_RIGHTS), which hands it to the console socket or the caller's tty.
 */
export function terminalSteps(s: ChildSteps, socket: FdRef, size?: { height: number; width: number }): void {
  const field = 'process.terminal';
  const master = s.openPath('/dev/ptmx', O.RDWR | O.NOCTTY, { field, label: 'open("/dev/ptmx") of the container' });
  s.call('ioctl', [master, TIOC.SPTLCK, Buffer.alloc(4)], { field, label: 'ioctl(ptmx, TIOCSPTLCK, 0): unlock the pty' });
  if (size) {
    const ws = Buffer.alloc(8);
    ws.writeUInt16LE(size.height, 0);
    ws.writeUInt16LE(size.width, 2);
    s.call('ioctl', [master, TIOC.SWINSZ, ws], { field: 'process.consoleSize', label: `ioctl(ptmx, TIOCSWINSZ, ${size.height}x${size.width})` });
  }
  const slave = s.openPathLike('ioctl', [master, TIOC.GPTPEER, O.RDWR | O.NOCTTY], { field, label: 'ioctl(ptmx, TIOCGPTPEER): open the pty slave' });
  for (let i = 0; i < 3; i++) s.call('dup2', [slave, i], { field, label: `dup2(pty slave, ${i})` });
  s.close(slave);
  s.call('ioctl', [0, TIOC.SCTTY, 0], { field, label: 'ioctl(0, TIOCSCTTY): the pty as controlling terminal' });
  s.sendFd(socket, master, { field, label: 'sendmsg(pty master to the runtime)' });
  s.close(master);
}

/** Build the spawn plan of a container. Throws SetupError for what cannot be done. */
export function buildContainerPlan(setup: ContainerSetup, opts: ContainerPlanOptions): ContainerPlan {
  const ns = planNamespaces(setup.namespaces);
  if (!ns.has('mount')) throw new SetupError('linux.namespaces', 'a mount namespace is required to set up the rootfs');
  if (ns.newUserns && ns.joins.length > 0) {
    throw new SetupError('linux.namespaces', `joining ${ns.joins.map((j) => j.type).join(', ')} by path together with a new user namespace is not supported`);
  }
  if (ns.userns && !ns.newUserns && ns.isNew('pid')) {
    throw new SetupError('linux.namespaces', 'a new pid namespace inside a joined user namespace is not supported');
  }
  const host = opts.host ?? { mounts: readMountInfo() };
  const binds = setup.mounts.filter((m) => m.type === '' && m.source.startsWith('/')).map((m) => ({ dest: m.destination, source: m.source }));
  const arg0 = setup.process.args[0];
  const execPath = findExecutable(setup.rootfs, arg0, setup.process.env, binds);
  if (execPath === undefined) {
    const pathVar = setup.process.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? '(default)';
    throw new SetupError('process.args[0]', `executable ${JSON.stringify(arg0)} not found in $PATH (${pathVar}) of the rootfs`);
  }
  checkMountDestinations(setup);

  const s = new ChildSteps(new SpawnPlan().preserveFds(opts.preserveFds ?? 0));
  (opts.cgroupTasks ?? []).forEach((name, i) => {
    const tasks = s.plan.keep(`cgroupTasks:${i}`);
    s.call('write', [tasks, '0', 1], { field: 'linux.cgroupsPath', label: `write("0") to the tasks file of the container's ${name} cgroup` });
    // A parked init holds no host file; the fd number stays taken (the child's fd numbers are computed with it):
    // it becomes a close-on-exec copy of the stop pipe's read end.
    s.plan.call('dup3', [{ fd: 'stopR' }, tasks, O.CLOEXEC], { label: `dup3(stop pipe, tasks fd of the ${name} cgroup, O_CLOEXEC)` });
  });
  const joinFiles: ContainerPlan['joinFiles'] = [];
  for (const j of ns.joins) {
    const keep = `ns:${j.type}`;
    joinFiles.push({ keep, path: j.path });
    s.call('setns', [s.plan.keep(keep), NAMESPACE_FLAGS[j.type]], { field: SETNS_EXTRA_FIELD, label: `setns(${JSON.stringify(j.path)}, ${j.type})` });
  }
  if (ns.unshareFlags) s.call('unshare', [ns.unshareFlags], { field: SETNS_EXTRA_FIELD, label: `unshare(0x${ns.unshareFlags.toString(16)})` });
  s.plan.gate('setup');
  sessionSteps(s);
  if (ns.isNew('cgroup')) s.call('unshare', [NAMESPACE_FLAGS.cgroup], { field: SETNS_EXTRA_FIELD, label: 'unshare(CLONE_NEWCGROUP) after joining the cgroups' });
  const rootMapped = (maps: ContainerSetup['uidMappings']) => maps.some((m) => m.containerID === 0);
  if (ns.newUserns) {
    // Become root of the new user namespace (its creator has every capability in it already).
    if (rootMapped(setup.gidMappings)) s.sys(SYS.setresgid, [0, 0, 0], { field: 'linux.gidMappings', label: 'setresgid(0, 0, 0) in the user namespace' });
    if (rootMapped(setup.uidMappings)) s.sys(SYS.setresuid, [0, 0, 0], { field: 'linux.uidMappings', label: 'setresuid(0, 0, 0) in the user namespace' });
  }
  if (ns.isNew('network')) loopbackUp(s);
  const rootfsOpts = { setup, host, userns: ns.userns, cgroupns: ns.isNew('cgroup'), beforePivot: opts.hookGate ? () => void s.plan.gate('prestart') : undefined };
  const mounts = mountRootfs(s, rootfsOpts);
  setupKernelSettings(s, setup);
  finalizeRootfs(s, rootfsOpts, mounts);
  if (setup.process.terminal) terminalSteps(s, s.plan.keep('consoleSocket'), setup.process.consoleSize);
  setupRlimits(s, setup);
  // Seccomp as runc: with no_new_privs last (after capabilities are dropped); without it before the user
  // switch, while CAP_SYS_ADMIN is still effective (the filter then also applies to the remaining steps).
  const seccomp = setup.seccomp ? compileSeccomp(setup.seccomp) : undefined;
  const notifySocket = seccomp?.notify ? s.plan.keep('seccompSocket') : undefined;
  const seccompEarly = seccomp !== undefined && !setup.process.noNewPrivileges;
  if (seccomp && seccompEarly) loadSeccompSteps(s, seccomp, notifySocket);
  setupUser(s, setup, { setgroupsAllowed: true, execPath, execCheckTolerates: seccompEarly ? [ERRNO.EPERM, ERRNO.ENOSYS] : [] });
  if (seccomp && !seccompEarly) loadSeccompSteps(s, seccomp, notifySocket);
  if (opts.startGate === 'fifo') {
    // The creating process exits after `created`: the child must not die with it.
    s.call('prctl', [PR.SET_PDEATHSIG, 0, 0, 0, 0], { label: 'prctl(PR_SET_PDEATHSIG, 0)' });
    s.plan.gate('start', s.plan.keep('execFifo'));
  } else {
    s.plan.gate('start');
    s.call('prctl', [PR.SET_PDEATHSIG, 0, 0, 0, 0], { check: 'none' });
  }
  s.plan.exec(execPath, setup.process.args, withHome(setup));
  return { plan: s.plan, namespaces: ns, execPath, joinFiles, seccomp };
}
